# Pcap interop with scapy: writes pcap files with scapy's writers (little- and big-endian,
# micro- and nanosecond) into the directory given, and reads back with scapy's reader
# every *.ours.pcap file the TS side wrote there. Prints JSON describing both.
import json
import os
import sys
from decimal import Decimal

from scapy.all import IP, UDP, Ether, PcapWriter, Raw, rdpcap, wrpcap
from scapy.utils import RawPcapReader

d = sys.argv[1]
pkts = [
    Ether(src="52:54:00:00:00:01", dst="52:54:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2) / Raw(b"one"),
    Ether(src="52:54:00:00:00:03", dst="ff:ff:ff:ff:ff:ff") / Raw(bytes(range(200))),
    Ether() / IP() / UDP() / Raw(b"\x00" * 1400),
]
# Times exact at each precision and with fractions below one half: scapy 2.5 rounds
# finer ones, and near a whole second can write sec + 1 or a fraction of 1000000 µs.
TIMES = {
    False: [Decimal("1700000000.123456"), Decimal("1700000001.000001"), Decimal("4000000000.400999")],
    True: [Decimal("1700000000.123456789"), Decimal("1700000001.000000001"), Decimal("4000000000.400000999")],
}
pkts[1].wirelen = 1000  # a capture cut at 214 bytes of 1000


def stamp(nano):
    for p, t in zip(pkts, TIMES[nano]):
        p.time = t
    return pkts


wrpcap(os.path.join(d, "le_us.pcap"), stamp(False))
with PcapWriter(os.path.join(d, "le_ns.pcap"), nano=True) as w:
    w.write(stamp(True))
with PcapWriter(os.path.join(d, "be_us.pcap"), endianness=">") as w:
    w.write(stamp(False))
with PcapWriter(os.path.join(d, "be_ns.pcap"), endianness=">", nano=True) as w:
    w.write(stamp(True))


def expect(nano):
    out = []
    for p, t in zip(pkts, TIMES[nano]):
        sec = int(t)
        frac = int((t - sec) * (10**9 if nano else 10**6))
        data = bytes(p)
        out.append(dict(tsSec=sec, tsFrac=frac, hex=data.hex(), origLen=getattr(p, "wirelen", None) or len(data)))
    return out


files = {
    "le_us.pcap": dict(littleEndian=True, nanos=False, records=expect(False)),
    "le_ns.pcap": dict(littleEndian=True, nanos=True, records=expect(True)),
    "be_us.pcap": dict(littleEndian=False, nanos=False, records=expect(False)),
    "be_ns.pcap": dict(littleEndian=False, nanos=True, records=expect(True)),
}

ours = {}
for name in sorted(os.listdir(d)):
    if not name.endswith(".ours.pcap"):
        continue
    path = os.path.join(d, name)
    r = RawPcapReader(path)
    recs = []
    for data, meta in r:
        recs.append(dict(sec=meta.sec, usec=meta.usec, caplen=meta.caplen, wirelen=meta.wirelen, hex=data.hex()))
    ours[name] = dict(linktype=r.linktype, nano=bool(getattr(r, "nano", False)), records=recs, dissects=[p.summary() for p in rdpcap(path)])
    r.close()

json.dump(dict(files=files, ours=ours), sys.stdout)
