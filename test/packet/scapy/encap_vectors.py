# Known-answer VXLAN encapsulations built by scapy, an implementation independent of
# ours: for each case, the inner frames, the tunnel settings, and the outer frames scapy
# builds (IP and UDP checksums computed by scapy). The UDP source port is computed here
# from RFC-level definitions (bitwise CRC-32C over a flow key read off scapy's dissection),
# so a wrong hash or key in the TS model shows up as a byte mismatch. Prints JSON.
import json
import socket
import sys

from scapy.all import ARP, ICMP, IP, SCTP, TCP, UDP, VXLAN, Dot1AD, Dot1Q, Ether, IPv6, IPOption, Raw


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


def flow_key(inner):
    p = Ether(inner)
    key = inner[:12]
    if IP in p:
        ip = p[IP]
        key += socket.inet_aton(ip.src) + socket.inet_aton(ip.dst)
        proto = ip.proto
        frag = bool(ip.flags.MF) or ip.frag != 0
        l4 = bytes(ip.payload)
    elif IPv6 in p:
        ip = p[IPv6]
        key += socket.inet_pton(socket.AF_INET6, ip.src) + socket.inet_pton(socket.AF_INET6, ip.dst)
        proto = ip.nh
        frag = False
        l4 = bytes(ip.payload)
    else:
        return key
    if proto in (6, 17, 132) and not frag and len(l4) >= 4:
        key += l4[:4]
    return key + bytes([proto])


def inner_ip_info(inner):
    """(tos, df) that inherit takes, from scapy's dissection."""
    p = Ether(inner)
    if IP in p:
        return p[IP].tos, bool(p[IP].flags.DF)
    if IPv6 in p:
        return p[IPv6].tc, True
    return 0, False


E = dict(src="52:54:00:aa:bb:01", dst="52:54:00:aa:bb:02")
E2 = dict(src="52:54:00:12:34:56", dst="ff:ff:ff:ff:ff:ff")

INNERS = {
    "ipv4_udp": Ether(**E) / IP(src="192.168.1.10", dst="192.168.1.20", ttl=63) / UDP(sport=1234, dport=53) / Raw(b"hello vxlan"),
    "ipv4_tcp": Ether(**E) / IP(src="192.168.1.10", dst="192.168.1.30", tos=0x2E, flags="DF") / TCP(sport=40000, dport=443, flags="S"),
    "ipv4_df_tos": Ether(**E) / IP(src="172.16.0.1", dst="172.16.0.2", tos=0x2E, flags="DF") / UDP(sport=5000, dport=6000) / Raw(b"x" * 20),
    "ipv4_nodf_tos": Ether(**E) / IP(src="172.16.0.1", dst="172.16.0.2", tos=0xB8) / UDP(sport=5000, dport=6000) / Raw(b"y" * 21),
    "ipv6_tcp": Ether(**E) / IPv6(src="fd00::1", dst="fd00::2", tc=0x5A, fl=0x12345) / TCP(sport=2222, dport=22),
    "ipv6_udp_odd": Ether(**E) / IPv6(src="fd00::a", dst="fd00::b") / UDP(sport=7, dport=9) / Raw(b"odd"),
    "arp": Ether(**E2) / ARP(psrc="192.168.1.10", pdst="192.168.1.1", hwsrc="52:54:00:12:34:56"),
    "vlan_ipv4_udp": Ether(**E) / Dot1Q(vlan=10, prio=3) / IP(src="10.1.1.1", dst="10.1.1.2", tos=0x10, flags="DF") / UDP(sport=1111, dport=2222),
    "qinq_ipv6_udp": Ether(**E) / Dot1AD(vlan=100) / Dot1Q(vlan=200) / IPv6(src="2001:db8::1", dst="2001:db8::2", tc=0x20) / UDP(sport=3333, dport=4444),
    "ipv4_frag": Ether(**E) / IP(src="10.2.0.1", dst="10.2.0.2", flags="MF", id=77) / UDP(sport=9999, dport=8888) / Raw(b"z" * 16),
    "ipv4_frag_offset": Ether(**E) / IP(src="10.2.0.1", dst="10.2.0.2", frag=185, proto=17) / Raw(b"w" * 16),
    "ipv4_sctp": Ether(**E) / IP(src="10.3.0.1", dst="10.3.0.2") / SCTP(sport=36412, dport=38412),
    "ipv4_icmp": Ether(**E) / IP(src="10.3.0.1", dst="10.3.0.2") / ICMP(id=1, seq=2),
    "ipv4_options_udp": Ether(**E) / IP(src="10.4.0.1", dst="10.4.0.2", options=[IPOption(b"\x94\x04\x00\x00")]) / UDP(sport=1000, dport=2000),
    "ipv4_big": Ether(**E) / IP(src="10.5.0.1", dst="10.5.0.2") / UDP(sport=4321, dport=1234) / Raw(bytes(range(256)) * 5 + b"!"),
    "bare_eth": Ether(dst="01:00:5e:00:00:01", src="52:54:00:00:00:09", type=0x88CC) / Raw(b"lldp"),
}
INNERS = {k: bytes(v) for k, v in INNERS.items()}

CASES = [
    # name, tunnel spec (TunnelSpec, as the TS side takes it), vni, inner names
    ("v4 defaults, csum off", dict(local="10.0.0.1", remote="10.0.0.2", ipId=0x1234), 42, ["ipv4_udp"]),
    ("v4 csum on, fixed tos, df set, ttl 255", dict(local="10.0.0.1", remote="10.0.0.2", udpCsum=True, tos=0xB8, df="set", ttl=255, ipId=7), 0xABCDEF, ["ipv4_tcp"]),
    ("v4 inherit from IPv4 DF", dict(local="10.0.0.1", remote="10.0.0.2", tos="inherit", df="inherit"), 1, ["ipv4_df_tos"]),
    ("v4 inherit from IPv4 no DF", dict(local="10.0.0.1", remote="10.0.0.2", tos="inherit", df="inherit", udpCsum=True), 1, ["ipv4_nodf_tos"]),
    ("v4 inherit from IPv6", dict(local="10.0.0.1", remote="10.0.0.2", tos="inherit", df="inherit"), 2, ["ipv6_tcp"]),
    ("v4 inherit from ARP", dict(local="10.0.0.1", remote="10.0.0.2", tos="inherit", df="inherit"), 3, ["arp"]),
    ("v4 outer VLAN pcp", dict(local="198.51.100.1", remote="203.0.113.9", vlan=100, vlanPcp=5, srcMac="0a:00:00:00:00:01", dstMac="0a:00:00:00:00:02", udpCsum=True), 100, ["vlan_ipv4_udp"]),
    ("v4 inner QinQ IPv6", dict(local="10.0.0.1", remote="10.0.0.2", tos="inherit"), 5000, ["qinq_ipv6_udp"]),
    ("v4 inner fragments", dict(local="10.0.0.1", remote="10.0.0.2"), 9, ["ipv4_frag", "ipv4_frag_offset"]),
    ("v4 sctp and icmp", dict(local="10.0.0.1", remote="10.0.0.2", udpCsum=True), 9, ["ipv4_sctp", "ipv4_icmp"]),
    ("v4 inner IPv4 options", dict(local="10.0.0.1", remote="10.0.0.2"), 9, ["ipv4_options_udp"]),
    ("v4 big odd inner, csum", dict(local="10.0.0.1", remote="10.0.0.2", udpCsum=True, dstPort=8472), 77, ["ipv4_big"]),
    ("v4 ID wraps", dict(local="10.0.0.1", remote="10.0.0.2", ipId=65535), 4, ["ipv4_udp", "arp", "ipv6_tcp"]),
    ("v4 port range min=max", dict(local="10.0.0.1", remote="10.0.0.2", srcPortMin=1234, srcPortMax=1234), 4, ["ipv4_udp", "ipv6_tcp"]),
    ("v4 port range full", dict(local="10.0.0.1", remote="10.0.0.2", srcPortMin=1, srcPortMax=65535), 4, ["ipv4_udp", "ipv4_tcp", "arp", "bare_eth"]),
    ("v6 defaults", dict(local="2001:db8:1::1", remote="2001:db8:2::2"), 42, ["ipv4_udp", "ipv6_udp_odd"]),
    ("v6 fixed tos, ttl", dict(local="fd00:1::1", remote="fd00:1::2", tos=0x10, ttl=9, df="set"), 0xFFFFFF, ["ipv6_tcp"]),
    ("v6 inherit", dict(local="fd00:1::1", remote="fd00:1::2", tos="inherit", df="inherit"), 0, ["ipv6_tcp", "ipv4_nodf_tos", "arp"]),
    ("v6 priority-tagged outer", dict(local="fd00:1::1", remote="fd00:1::2", vlan=0, vlanPcp=3), 3, ["vlan_ipv4_udp", "ipv4_big"]),
]

DEF = dict(srcMac="02:00:00:00:00:01", dstMac="02:00:00:00:00:02", vlan=None, vlanPcp=0, dstPort=4789,
           srcPortMin=49152, srcPortMax=65535, ttl=64, tos=0, df="unset", udpCsum=False, ipId=0)


def outer(spec, vni, inner, ip_id):
    t = dict(DEF, **spec)
    v6 = ":" in t["local"]
    h = crc32c(flow_key(inner))
    span = t["srcPortMax"] - t["srcPortMin"] + 1
    sport = t["srcPortMin"] + (h * span >> 32)
    itos, idf = inner_ip_info(inner)
    # RFC 6040 section 4.1 (normal mode): a fixed TOS is the DSCP, the ECN field the inner one's.
    tos = itos if t["tos"] == "inherit" else (t["tos"] & 0xFC) | (itos & 3)
    df = t["df"] == "set" or (t["df"] == "inherit" and idf)
    p = Ether(src=t["srcMac"], dst=t["dstMac"])
    if t["vlan"] is not None:
        p = p / Dot1Q(vlan=t["vlan"], prio=t["vlanPcp"])
    if v6:
        p = p / IPv6(src=t["local"], dst=t["remote"], tc=tos, fl=0, hlim=t["ttl"])
        udp = UDP(sport=sport, dport=t["dstPort"])
    else:
        p = p / IP(src=t["local"], dst=t["remote"], tos=tos, id=ip_id, flags="DF" if df else 0, ttl=t["ttl"])
        udp = UDP(sport=sport, dport=t["dstPort"]) if t["udpCsum"] else UDP(sport=sport, dport=t["dstPort"], chksum=0)
    p = p / udp / VXLAN(flags=0x08, vni=vni) / Raw(inner)
    return bytes(p), sport


out = []
for name, spec, vni, inner_names in CASES:
    ip_id = dict(DEF, **spec)["ipId"]
    frames = []
    for nm in inner_names:
        inner = INNERS[nm]
        o, sport = outer(spec, vni, inner, ip_id)
        ip_id = (ip_id + 1) & 0xFFFF
        frames.append(dict(inner=inner.hex(), outer=o.hex(), key=flow_key(inner).hex(), sport=sport, innerName=nm))
    out.append(dict(name=name, spec=spec, vni=vni, frames=frames, nextId=ip_id))

json.dump(out, sys.stdout)
