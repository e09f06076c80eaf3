// SPDX-License-Identifier: Apache-2.0
// Tiny TCP peer for the VM suite (runs inside a pod's network namespace).
//   node tcp.mjs listen IP PORT          accept one connection, print "peer=ADDR bytes=N", echo a byte count back
//   node tcp.mjs connect IP PORT BYTES   send BYTES, expect the count back, print "ok bytes=N local=ADDR"
import net from 'node:net'

const [mode, host, portStr, bytesStr] = process.argv.slice(2)
const port = Number(portStr)
const fail = (msg) => {
  console.error(msg)
  process.exit(1)
}
setTimeout(() => fail(`${mode}: timed out`), 60_000).unref()

if (mode === 'listen') {
  const server = net.createServer((sock) => {
    let n = 0
    sock.on('data', (d) => {
      n += d.length
    })
    sock.on('end', () => {
      console.log(`peer=${sock.remoteAddress} bytes=${n}`)
      sock.end(`${n}\n`, () => server.close())
    })
    sock.on('error', (e) => fail(`listen: ${e.message}`))
  })
  server.listen(port, host, () => console.log(`listening ${host}:${port}`))
} else if (mode === 'connect') {
  const total = Number(bytesStr ?? 65536)
  const sock = net.connect({ host, port }, () => {
    sock.end(Buffer.alloc(total, 0x61))
  })
  let reply = ''
  sock.on('data', (d) => {
    reply += d
  })
  sock.on('end', () => {
    if (Number(reply.trim()) !== total) fail(`connect: peer counted ${reply.trim()} of ${total} bytes`)
    console.log(`ok bytes=${total} local=${sock.localAddress}`)
  })
  sock.on('error', (e) => fail(`connect: ${e.message}`))
} else {
  fail('usage: tcp.mjs listen|connect IP PORT [BYTES]')
}
