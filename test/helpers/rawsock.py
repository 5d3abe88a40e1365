#!/usr/bin/python3
# Raw frame injection and capture over AF_PACKET, for integration tests (stdlib only).
#   rawsock.py send IFACE [--by-cpu] < hex frames, one per line
#     --by-cpu: PACKET_QDISC_BYPASS, whose queue choice records the sending CPU first, so
#     on a multiqueue veth (no XPS) every frame takes tx queue CPU % queues and reaches the
#     peer's rx queue of that index; without it the flow hash picks the queue.
#   rawsock.py capture IFACE COUNT TIMEOUT_S [--incoming] [--udp-dport PORT] [--vlan]
# capture prints READY once bound, then one JSON object per frame (its packet type, the
# monotonic time it was read at in seconds, its bytes in hex); it stops after COUNT
# frames or TIMEOUT_S seconds. The kernel strips a VLAN tag before packet sockets see the
# frame; --vlan puts it back from PACKET_AUXDATA, so a capture shows the frame as sent.
import json, select, socket, sys, time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET, PACKET_AUXDATA, PACKET_QDISC_BYPASS = 263, 8, 20
TP_STATUS_VLAN_VALID, TP_STATUS_VLAN_TPID_VALID = 1 << 4, 1 << 6

def with_vlan(data, anc):
    # struct tpacket_auxdata: status, len, snaplen (u32), mac, net, vlan_tci, vlan_tpid (u16)
    for level, kind, aux in anc:
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(aux) >= 20:
            status = int.from_bytes(aux[0:4], sys.byteorder)
            tci = int.from_bytes(aux[16:18], sys.byteorder)
            tpid = int.from_bytes(aux[18:20], sys.byteorder)
            if status & TP_STATUS_VLAN_VALID:
                if not status & TP_STATUS_VLAN_TPID_VALID:
                    tpid = 0x8100
                return data[:12] + tpid.to_bytes(2, 'big') + tci.to_bytes(2, 'big') + data[12:]
    return data

def drain(s):
    # Frames queued before READY belong to nobody's test. Leaves s non-blocking.
    s.setblocking(False)
    try:
        while True:
            s.recv(65536)
    except BlockingIOError:
        pass

def udp_dport(f):
    # The UDP destination port of an Ethernet/[VLAN]/IPv4|IPv6/UDP frame, else None.
    t, o = int.from_bytes(f[12:14], 'big'), 14
    if t == 0x8100 and len(f) >= 18:
        t, o = int.from_bytes(f[16:18], 'big'), 18
    if t == 0x0800 and len(f) >= o + 20 and f[o + 9] == 17:
        l4 = o + (f[o] & 0x0f) * 4
    elif t == 0x86DD and len(f) >= o + 40 and f[o + 6] == 17:
        l4 = o + 40
    else:
        return None
    return int.from_bytes(f[l4 + 2:l4 + 4], 'big') if len(f) >= l4 + 4 else None

def main():
    mode, iface = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    if mode == 'send':
        if '--by-cpu' in sys.argv:
            s.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
        n = 0
        for line in sys.stdin:
            line = line.strip()
            if line:
                s.send(bytes.fromhex(line))
                n += 1
        print(json.dumps({'sent': n}), flush=True)
        return
    count, timeout = int(sys.argv[3]), float(sys.argv[4])
    incoming = '--incoming' in sys.argv
    dport = int(sys.argv[sys.argv.index('--udp-dport') + 1]) if '--udp-dport' in sys.argv else None
    vlan = '--vlan' in sys.argv
    if vlan:
        s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    drain(s)
    print('READY', flush=True)
    got, deadline = 0, time.monotonic() + timeout
    while got < count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        r, _, _ = select.select([s], [], [], left)
        if not r:
            continue
        if vlan:
            data, anc, _, addr = s.recvmsg(65536, socket.CMSG_SPACE(32))
            data = with_vlan(data, anc)
        else:
            data, addr = s.recvfrom(65536)
        if incoming and addr[2] == PACKET_OUTGOING:
            continue
        if dport is not None and udp_dport(data) != dport:
            continue
        print(json.dumps({'pkttype': addr[2], 't': time.monotonic(), 'hex': data.hex()}), flush=True)
        got += 1

if __name__ == '__main__':
    main()
