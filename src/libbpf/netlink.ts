// SPDX-License-Identifier: Apache-2.0
// Minimal rtnetlink client (libc socket/send/recv): RTM_GETLINK, optionally
// for a device in another netns via IFLA_TARGET_NETNSID (how we read the MAC
// of a veth's pod-side peer without entering the pod's namespace).

import { checkLibc } from './check.js';
import { BpfError } from './errors.js';
import { libc } from './ffi.js';

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_ROUTE = 0;

const MSG_DONTWAIT = 0x40;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLM_F_REQUEST = 1;
const RTM_NEWLINK = 16;
const RTM_GETLINK = 18;

const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_TARGET_NETNSID = 46;

/*
 * Request: struct nlmsghdr (16: len u32, type u16, flags u16, seq u32, pid u32)
 *        + struct ifinfomsg (16: family u8, pad u8, type u16, index s32, flags u32, change u32)
 *        + optional rtattr IFLA_TARGET_NETNSID (4 + s32).
 */
const NLMSGHDR_LEN = 16;
const IFINFOMSG_LEN = 16;

export interface LinkInfo {
  ifindex: number;
  name: string;
  /** "aa:bb:cc:dd:ee:ff" (lower case), "" if the device has no L2 address. */
  mac: string;
  mtu: number;
}

let seq = Math.floor(Math.random() * 0x7fffffff);
let recvBuf: Buffer | undefined;

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** RTM_GETLINK for `ifindex` in this netns, or in the netns with id `netnsid` (as seen from this one). */
export function getLink(ifindex: number, netnsid?: number): LinkInfo {
  const lc = libc();
  const op = `RTM_GETLINK(ifindex ${ifindex}${netnsid !== undefined ? `, netnsid ${netnsid}` : ''})`;
  const len = NLMSGHDR_LEN + IFINFOMSG_LEN + (netnsid !== undefined ? 8 : 0);
  const req = Buffer.alloc(len);
  const mySeq = (seq = (seq + 1) & 0x7fffffff);
  req.writeUInt32LE(len, 0);
  req.writeUInt16LE(RTM_GETLINK, 4);
  req.writeUInt16LE(NLM_F_REQUEST, 6);
  req.writeUInt32LE(mySeq, 8);
  req.writeInt32LE(ifindex, NLMSGHDR_LEN + 4);
  if (netnsid !== undefined) {
    const a = NLMSGHDR_LEN + IFINFOMSG_LEN;
    req.writeUInt16LE(8, a);
    req.writeUInt16LE(IFLA_TARGET_NETNSID, a + 2);
    req.writeInt32LE(netnsid, a + 4);
  }

  const fd = checkLibc(lc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), 'socket(AF_NETLINK)');
  try {
    checkLibc(lc.send(fd, req, req.length, 0), `${op} send`);
    const buf = (recvBuf ??= Buffer.alloc(64 * 1024));
    // The kernel answers within send(): the reply is already queued, so never block.
    for (;;) {
      const n = checkLibc(lc.recv(fd, buf, buf.length, MSG_DONTWAIT), `${op} recv`);
      for (let off = 0; off + NLMSGHDR_LEN <= n; ) {
        const mlen = buf.readUInt32LE(off);
        const type = buf.readUInt16LE(off + 4);
        const mseq = buf.readUInt32LE(off + 8);
        if (mlen < NLMSGHDR_LEN || off + mlen > n) throw new Error(`${op}: truncated netlink message`);
        if (mseq === mySeq) {
          if (type === NLMSG_ERROR) {
            const err = buf.readInt32LE(off + NLMSGHDR_LEN);
            if (err !== 0) throw new BpfError(op, -err);
          } else if (type === NLMSG_DONE) {
            throw new BpfError(op, 19 /* ENODEV */);
          } else if (type === RTM_NEWLINK) {
            return parseLink(buf, off, mlen);
          }
        }
        off += align4(mlen);
      }
    }
  } finally {
    lc.close(fd);
  }
}

function parseLink(buf: Buffer, off: number, mlen: number): LinkInfo {
  const info: LinkInfo = { ifindex: buf.readInt32LE(off + NLMSGHDR_LEN + 4), name: '', mac: '', mtu: 0 };
  const end = off + mlen;
  for (let a = off + NLMSGHDR_LEN + IFINFOMSG_LEN; a + 4 <= end; ) {
    const alen = buf.readUInt16LE(a);
    const atype = buf.readUInt16LE(a + 2) & 0x3fff; // strip NLA_F_NESTED / NLA_F_NET_BYTEORDER
    if (alen < 4) break;
    const p = a + 4;
    const plen = alen - 4;
    if (atype === IFLA_IFNAME) {
      const z = buf.indexOf(0, p);
      info.name = buf.toString('utf8', p, z >= p && z < p + plen ? z : p + plen);
    } else if (atype === IFLA_ADDRESS) {
      info.mac = Array.from(buf.subarray(p, p + plen), (b) => b.toString(16).padStart(2, '0')).join(':');
    } else if (atype === IFLA_MTU && plen >= 4) {
      info.mtu = buf.readUInt32LE(p);
    }
    a += align4(alen);
  }
  return info;
}
