#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Hand-made packets for the hostile-pod tests (e2e and VM suite), from raw
# sockets as a pod with CAP_NET_RAW could send them. Standard library only.
#
#   rawpkt.py vxlan --outer-src A --outer-dst B [--vni N] [--port 8472] [--outer-options]
#                   --inner-src X --inner-dst Y --dport P [--inner-mac M] --payload TEXT [--count N]
#       UDP/VXLAN around an inner Ethernet/IPv4/UDP datagram, through an
#       IP_HDRINCL socket: the outer source is whatever is given.
#   rawpkt.py frame --ifname DEV [--vid V [--tpid 0x8100]] --dst-mac M --src X --dst Y --dport P
#                   --payload TEXT [--count N]
#       An Ethernet/IPv4/UDP frame through an AF_PACKET socket on DEV, with
#       an 802.1Q (or 802.1ad) tag written into it when --vid is given.
#   rawpkt.py listen --bind IP --port P --timeout S
#       Prints "got FROM TEXT" for every UDP datagram until S seconds pass quietly.
import argparse
import socket
import struct
import sys
import time


def csum(b: bytes) -> int:
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack(f'!{len(b) // 2}H', b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(src: str, dst: str, proto: int, payload: bytes, options: bytes = b'', ttl: int = 64) -> bytes:
    ihl = 5 + len(options) // 4
    hdr = struct.pack('!BBHHHBBH4s4s', (4 << 4) | ihl, 0, ihl * 4 + len(payload), 0x1234, 0x4000, ttl, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst)) + options
    return hdr[:10] + struct.pack('!H', csum(hdr)) + hdr[12:] + payload


def udp(src: str, dst: str, sport: int, dport: int, data: bytes, checksum: bool = True) -> bytes:
    seg = struct.pack('!HHHH', sport, dport, 8 + len(data), 0) + data
    if not checksum:
        return seg
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, 17, len(seg))
    c = csum(pseudo + seg) or 0xFFFF
    return seg[:6] + struct.pack('!H', c) + seg[8:]


def mac(s: str) -> bytes:
    return bytes(int(x, 16) for x in s.split(':'))


def datagram(src: str, dst: str, dport: int, payload: str) -> bytes:
    return ipv4(src, dst, 17, udp(src, dst, 40000, dport, payload.encode()))


def send_vxlan(a) -> None:
    ip = datagram(a.inner_src, a.inner_dst, a.dport, a.payload)
    frame = mac(a.inner_mac) + mac('02:00:00:00:00:01') + struct.pack('!H', 0x0800) + ip
    vx = struct.pack('!II', 0x08000000, a.vni << 8) + frame
    # a NOP, NOP, NOP, EOL option word: nothing the kernel refuses, enough
    # for podnet's own decapsulation to leave the frame to the kernel
    opts = b'\x01\x01\x01\x00' if a.outer_options else b''
    pkt = ipv4(a.outer_src, a.outer_dst, 17, udp(a.outer_src, a.outer_dst, 45000, a.port, vx, checksum=False), opts)
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    for _ in range(a.count):
        s.sendto(pkt, (a.outer_dst, 0))
        time.sleep(0.05)


def send_frame(a) -> None:
    ip = datagram(a.src, a.dst, a.dport, a.payload)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.ifname, 0))
    src_mac = s.getsockname()[4]
    tag = struct.pack('!HH', int(a.tpid, 0), a.vid & 0xFFF) if a.vid is not None else b''
    frame = mac(a.dst_mac) + src_mac + tag + struct.pack('!H', 0x0800) + ip
    for _ in range(a.count):
        s.send(frame)
        time.sleep(0.05)


def listen(a) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a.bind, a.port))
    s.settimeout(a.timeout)
    print('listening', flush=True)
    try:
        while True:
            data, peer = s.recvfrom(65535)
            print(f'got {peer[0]} {data.decode(errors="replace")}', flush=True)
    except socket.timeout:
        pass


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest='cmd', required=True)
    v = sub.add_parser('vxlan')
    v.add_argument('--outer-src', required=True)
    v.add_argument('--outer-dst', required=True)
    v.add_argument('--vni', type=int, default=1)
    v.add_argument('--port', type=int, default=8472)
    v.add_argument('--outer-options', action='store_true')
    v.add_argument('--inner-src', required=True)
    v.add_argument('--inner-dst', required=True)
    v.add_argument('--inner-mac', default='02:00:00:00:00:02')
    v.add_argument('--dport', type=int, required=True)
    v.add_argument('--payload', required=True)
    v.add_argument('--count', type=int, default=3)
    t = sub.add_parser('frame')
    t.add_argument('--ifname', required=True)
    t.add_argument('--vid', type=int)
    t.add_argument('--tpid', default='0x8100')
    t.add_argument('--dst-mac', required=True)
    t.add_argument('--src', required=True)
    t.add_argument('--dst', required=True)
    t.add_argument('--dport', type=int, required=True)
    t.add_argument('--payload', required=True)
    t.add_argument('--count', type=int, default=3)
    li = sub.add_parser('listen')
    li.add_argument('--bind', required=True)
    li.add_argument('--port', type=int, required=True)
    li.add_argument('--timeout', type=float, default=5)
    a = p.parse_args()
    {'vxlan': send_vxlan, 'frame': send_frame, 'listen': listen}[a.cmd](a)


if __name__ == '__main__':
    sys.exit(main())
