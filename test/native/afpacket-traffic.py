#!/usr/bin/python3
# Traffic for the afpacket forwarder test (test/native/io-afpacket.test.ts).
#   send-set IFACE          builds the known frames with scapy, sends them, prints their hex
#   send-burst IFACE N      sends N small numbered frames as fast as it can
#   capture IFACE IDLE_S TIMEOUT_S [--summary]
# capture prints READY when bound, then one JSON line when no frame came for IDLE_S
# (after the first) or TIMEOUT_S passed: every frame's hex, or with --summary only the
# counts and sequence checks of the numbered frames. It restores the 802.1Q tag the
# kernel moved into the packet's aux data, so a tagged frame is seen as on the wire.
import json, os, select, socket, struct, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'helpers'))
from rawsock import drain, with_vlan  # noqa: E402  (the shared capture helpers)

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
MAGIC = b'VFPAFPKT'
DST, SRC = '02:00:00:00:00:02', '02:00:00:00:00:01'

def sock(iface):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE: the burst must not overflow us
    s.setsockopt(socket.SOL_SOCKET, 32, 16 << 20)  # SO_SNDBUFFORCE
    s.bind((iface, 0))
    return s

def known_frames():
    from scapy.all import Ether, Dot1Q, IP, UDP, Raw
    out = []
    for i, size in enumerate([60, 64, 128, 1500, 9000]):
        base = Ether(dst=DST, src=SRC) / IP(src='10.9.0.1', dst='10.9.0.2') / UDP(sport=1000 + i, dport=2000)
        pad = size - len(base)
        out.append(bytes(base / Raw(bytes((i * 7 + k) & 0xff for k in range(pad)))))
    tagged = Ether(dst=DST, src=SRC) / Dot1Q(vlan=100, prio=5) / IP(src='10.9.0.1', dst='10.9.0.2') / UDP(sport=3000, dport=2000)
    out.append(bytes(tagged / Raw(b'\xab' * (68 - len(tagged)))))
    for f, size in zip(out, [60, 64, 128, 1500, 9000, 68]):
        assert len(f) == size, (len(f), size)
    return out

def send_all(s, frames):
    for f in frames:
        while True:
            try:
                s.send(f)
                break
            except OSError as e:  # ENOBUFS when the device queue is full: wait a little
                if e.errno != 105:
                    raise
                time.sleep(0.0005)

def capture(iface, idle, timeout, summary):
    s = sock(iface)
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    drain(s)
    print('READY', flush=True)
    frames, total, seqs = [], 0, []
    start = time.monotonic()
    last = None
    while True:
        now = time.monotonic()
        if now - start > timeout or (last is not None and now - last > idle):
            break
        r, _, _ = select.select([s], [], [], 0.05)
        if not r:
            continue
        while True:
            try:
                data, anc, _, addr = s.recvmsg(65536, 256)
            except BlockingIOError:
                break
            if addr[2] == PACKET_OUTGOING:
                continue
            data = with_vlan(data, anc)
            total += 1
            last = time.monotonic()
            if summary:
                k = data.find(MAGIC)
                if k >= 0:
                    seqs.append(struct.unpack('!I', data[k + 8:k + 12])[0])
            else:
                frames.append(data.hex())
    if summary:
        uniq = len(set(seqs))
        ordered = all(a < b for a, b in zip(seqs, seqs[1:]))
        print(json.dumps({'total': total, 'numbered': len(seqs), 'unique': uniq, 'in_order': ordered}), flush=True)
    else:
        print(json.dumps({'total': total, 'frames': frames}), flush=True)

def main():
    mode, iface = sys.argv[1], sys.argv[2]
    if mode == 'send-set':
        frames = known_frames()
        send_all(sock(iface), frames)
        print(json.dumps({'frames': [f.hex() for f in frames]}), flush=True)
    elif mode == 'send-burst':
        n = int(sys.argv[3])
        head = bytes.fromhex(DST.replace(':', '') + SRC.replace(':', '')) + b'\x88\xb5' + MAGIC
        frames = [head + struct.pack('!I', i) + bytes(60 - len(head) - 4) for i in range(n)]
        s = sock(iface)
        t0 = time.monotonic()
        send_all(s, frames)
        print(json.dumps({'sent': n, 'seconds': time.monotonic() - t0}), flush=True)
    elif mode == 'capture':
        capture(iface, float(sys.argv[3]), float(sys.argv[4]), '--summary' in sys.argv)
    else:
        sys.exit('unknown mode ' + mode)

main()
