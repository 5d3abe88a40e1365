# Outer frames built by scapy, good and malformed, each with the decap reason the contract
# (docs/vxlan-engine.md §4.2) gives it and, for good ones, the inner frame, VNI and source
# VTEP that decap must report. Prints JSON.
import json
import socket
import sys

from scapy.all import ARP, IP, UDP, VXLAN, Dot1AD, Dot1Q, Ether, GRE, IPv6, IPOption, Padding, Raw

INNER = bytes(Ether(src="52:54:00:00:00:01", dst="52:54:00:00:00:02") / IP(src="192.168.0.1", dst="192.168.0.2") / UDP(sport=1, dport=2) / Raw(b"payload"))
INNER_VLAN = bytes(Ether(src="52:54:00:00:00:01", dst="52:54:00:00:00:02") / Dot1Q(vlan=7) / IP(src="192.168.0.1", dst="192.168.0.2"))
ETH = dict(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b")
S4, D4 = "10.0.0.1", "10.0.0.2"
S6, D6 = "2001:db8::1", "2001:db8::2"

out = []


def case(name, pkt, reason, opts=None, inner=INNER, vni=None, vtep=None):
    c = dict(name=name, opts=opts or {}, frame=bytes(pkt).hex(), reason=reason)
    if reason == "ok":
        c.update(inner=inner.hex(), vni=vni, vtep=vtep)
    out.append(c)


def v4(vni=10, ip=None, udp=None, vx=None, inner=INNER, eth=None):
    return (eth or Ether(**ETH)) / (ip or IP(src=S4, dst=D4)) / (udp or UDP(sport=50000, dport=4789)) / (vx or VXLAN(flags=0x08, vni=vni)) / Raw(inner)


def v6(vni=10, ip=None, udp=None, vx=None, inner=INNER):
    return Ether(**ETH) / (ip or IPv6(src=S6, dst=D6)) / (udp or UDP(sport=50000, dport=4789)) / (vx or VXLAN(flags=0x08, vni=vni)) / Raw(inner)


def vxraw(flags, vni, r1=0, r2=0):
    """A VXLAN header as raw bytes: scapy's VXLAN layer changes shape with the G/P flags."""
    return Raw(bytes([flags]) + r1.to_bytes(3, "big") + vni.to_bytes(3, "big") + bytes([r2]))


A4 = socket.inet_aton(S4).hex()
A6 = socket.inet_pton(socket.AF_INET6, S6).hex()

# Good frames.
case("ipv4, udp checksum", v4(vni=10), "ok", vni=10, vtep=A4)
case("ipv4, udp checksum verified", v4(vni=11), "ok", dict(verifyUdpCsum=True), vni=11, vtep=A4)
case("ipv4, zero udp checksum verified", v4(vni=12, udp=UDP(sport=1, dport=4789, chksum=0)), "ok", dict(verifyUdpCsum=True), vni=12, vtep=A4)
case("ipv6", v6(vni=0xFFFFFF), "ok", vni=0xFFFFFF, vtep=A6)
case("ipv6 verified", v6(vni=5), "ok", dict(verifyUdpCsum=True, locals=[D6]), vni=5, vtep=A6)
case("outer 802.1Q", Ether(**ETH) / Dot1Q(vlan=42) / IP(src=S4, dst=D4) / UDP(sport=1, dport=4789) / VXLAN(vni=3) / Raw(INNER), "ok", vni=3, vtep=A4)
case("outer QinQ", Ether(**ETH) / Dot1AD(vlan=1) / Dot1Q(vlan=2) / IPv6(src=S6, dst=D6) / UDP(sport=1, dport=4789) / VXLAN(vni=4) / Raw(INNER), "ok", vni=4, vtep=A6)
case("outer IPv4 options", v4(vni=6, ip=IP(src=S4, dst=D4, options=[IPOption(b"\x94\x04\x00\x00")])), "ok", dict(verifyUdpCsum=True), vni=6, vtep=A4)
case("ethernet padding after the IP packet", v4(vni=7) / Padding(b"\x00" * 18), "ok", vni=7, vtep=A4)
case("reserved VXLAN bits set", v4(vni=8, vx=vxraw(0xFF, 8, 0xFFFFFF, 0xFF)), "ok", vni=8, vtep=A4)
case("DF and reserved IP flags are not fragments", v4(vni=9, ip=IP(src=S4, dst=D4, flags="DF+evil")), "ok", vni=9, vtep=A4)
case("locals match", v4(vni=9), "ok", dict(locals=["10.9.9.9", D4]), vni=9, vtep=A4)
case("inner VLAN kept when not dropping", v4(vni=9, inner=INNER_VLAN), "ok", inner=INNER_VLAN, vni=9, vtep=A4)
case("dstPort 8472", v4(vni=9, udp=UDP(sport=1, dport=8472)), "ok", dict(dstPort=8472), vni=9, vtep=A4)

# One per reason, in contract order.
case("runt frame", Raw(b"\x02" * 13), "eth_truncated")
case("VLAN tag cut short", Ether(**ETH, type=0x8100) / Raw(b"\x00\x01"), "eth_truncated")
case("ARP outer", Ether(**ETH) / ARP(), "not_ip")
case("three VLAN tags", Ether(**ETH) / Dot1AD(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / IP(src=S4, dst=D4) / UDP(dport=4789) / VXLAN(vni=1) / Raw(INNER), "not_ip")
case("IPv4 header cut short", Ether(**ETH, type=0x0800) / Raw(bytes(IP(src=S4, dst=D4))[:19]), "ip_truncated")
case("IPv6 header cut short", Ether(**ETH, type=0x86DD) / Raw(bytes(IPv6(src=S6, dst=D6))[:39]), "ip_truncated")
case("IPv4 version 5", v4(ip=IP(src=S4, dst=D4, version=5)), "ip_bad_version")
V6_AS_4 = bytearray(bytes(v6()))
V6_AS_4[14] = 0x40  # IPv6 EtherType, IPv4 version nibble
case("IPv6 EtherType, version 4", Raw(bytes(V6_AS_4)), "ip_bad_version")
case("IHL 4", v4(ip=IP(src=S4, dst=D4, ihl=4)), "ip_bad_ihl")
case("IHL past the frame", Ether(**ETH) / IP(src=S4, dst=D4, ihl=15, proto=17) / Raw(b"\x00" * 20), "ip_truncated")
case("bad IPv4 header checksum", v4(ip=IP(src=S4, dst=D4, chksum=0x1234)), "ip_bad_checksum")
case("IPv4 total length past the frame", v4(ip=IP(src=S4, dst=D4, len=1500)), "ip_bad_length")
case("IPv4 total length below the header", v4(ip=IP(src=S4, dst=D4, len=19)), "ip_bad_length")
case("IPv6 payload length past the frame", v6(ip=IPv6(src=S6, dst=D6, plen=1000)), "ip_bad_length")
case("IPv4 MF", v4(ip=IP(src=S4, dst=D4, flags="MF")), "ip_fragment")
case("IPv4 fragment offset", v4(ip=IP(src=S4, dst=D4, frag=1)), "ip_fragment")
case("IPv4 not a local", v4(), "not_local", dict(locals=["10.0.0.3", D6]))
case("IPv6 not a local", v6(), "not_local", dict(locals=[D4, "2001:db8::3"]))
case("GRE", Ether(**ETH) / IP(src=S4, dst=D4) / GRE() / Raw(INNER), "not_udp")
case("IPv6 fragment header", Ether(**ETH) / IPv6(src=S6, dst=D6, nh=44) / Raw(b"\x11\x00\x00\x00\x00\x00\x00\x01") / UDP(dport=4789) / VXLAN(vni=1) / Raw(INNER), "not_udp")
case("IP payload shorter than UDP header", Ether(**ETH) / IP(src=S4, dst=D4, proto=17) / Raw(b"\xc3\x50\x12\xb5\x00\x10\x00"), "udp_bad_length")
case("other UDP port", v4(udp=UDP(sport=50000, dport=4790)), "not_vxlan_port")
case("UDP length 7", v4(udp=UDP(sport=50000, dport=4789, len=7)), "udp_bad_length")
case("UDP length past the IP payload", v4(udp=UDP(sport=50000, dport=4789, len=200)), "udp_bad_length")
case("bad IPv4 UDP checksum", v4(udp=UDP(sport=50000, dport=4789, chksum=0x1234)), "udp_bad_checksum", dict(verifyUdpCsum=True))
case("bad IPv4 UDP checksum not verified", v4(vni=10, udp=UDP(sport=50000, dport=4789, chksum=0x1234)), "ok", vni=10, vtep=A4)
case("bad IPv6 UDP checksum", v6(udp=UDP(sport=50000, dport=4789, chksum=0x1234)), "udp_bad_checksum", dict(verifyUdpCsum=True))
case("zero IPv6 UDP checksum", v6(udp=UDP(sport=50000, dport=4789, chksum=0)), "udp_zero_checksum", dict(verifyUdpCsum=True))
case("UDP payload shorter than VXLAN", Ether(**ETH) / IP(src=S4, dst=D4) / UDP(sport=1, dport=4789) / Raw(b"\x08\x00\x00\x00\x00\x00\x01"), "vxlan_truncated")
case("VXLAN without the I flag", v4(vx=VXLAN(flags=0x00, vni=10)), "vxlan_bad_flags")
case("VXLAN with every flag but I", v4(vx=vxraw(0xF7, 10, 0xFFFFFF, 0xFF)), "vxlan_bad_flags")
case("unknown VNI", v4(vni=3), "vni_unknown", dict(vnis=[1, 2]))
case("inner frame of 13 bytes", v4(inner=INNER[:13]), "inner_truncated")
case("empty inner frame", v4(inner=b""), "inner_truncated")
case("inner VLAN dropped", v4(inner=INNER_VLAN), "inner_vlan", dict(dropInnerVlan=True))

# Two defects: the earlier check names the reason.
case("bad version and bad checksum", v4(ip=IP(src=S4, dst=D4, version=6, chksum=1)), "ip_bad_version")
case("bad checksum and fragment", v4(ip=IP(src=S4, dst=D4, flags="MF", chksum=1)), "ip_bad_checksum")
case("fragment and not UDP", Ether(**ETH) / IP(src=S4, dst=D4, frag=3, proto=6) / Raw(b"\x00" * 40), "ip_fragment")
case("wrong port and bad UDP length", v4(udp=UDP(sport=50000, dport=53, len=3)), "not_vxlan_port")
case("bad UDP checksum and no I flag", v4(udp=UDP(sport=50000, dport=4789, chksum=0x1234), vx=VXLAN(flags=0, vni=1)), "udp_bad_checksum", dict(verifyUdpCsum=True))
case("no I flag and unknown VNI", v4(vx=VXLAN(flags=0, vni=99)), "vxlan_bad_flags", dict(vnis=[1]))
case("unknown VNI and short inner", v4(vni=99, inner=INNER[:5]), "vni_unknown", dict(vnis=[1]))

json.dump(out, sys.stdout)
