/*
 * Link, address, route and sysctl changes inside a network namespace, done in-process
 * with rtnetlink instead of a chain of `nsenter ip …` processes. A batch runs on its own
 * thread, which alone enters the namespace (setns affects the calling thread only), so
 * the caller's namespace never changes. Used by vfplane-cni on the ADD/DEL path.
 */
#ifndef VFP_NETOPS_H
#define VFP_NETOPS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum vfp_netop_kind {
	VFP_NETOP_LINK_GET,  /* in: name; out: found, ifindex, mac, mtu, up */
	VFP_NETOP_LINK_SET,  /* in: name, then in this order: down/up, new_name, mac, mtu, netns */
	VFP_NETOP_ADDR_ADD,  /* in: name, addr/prefix, nodad */
	VFP_NETOP_ROUTE_ADD, /* in: name, addr/prefix (destination), gw */
	VFP_NETOP_SYSCTL,    /* in: path under /proc/sys, value, optional */
	VFP_NETOP_MADDR,     /* in: name, mac (a multicast MAC), up: 1 join, 0 leave (a missing one is no error) */
	VFP_NETOP_ADDR_LIST, /* in: name; out: LINK_GET's, and out_addrs (the first VFP_NETOP_MAX_ADDRS), out_naddrs (all).
	                        An RTM_GETADDR dump: unlike iproute2's `ip addr show dev`, which asks for the link
	                        first, it never waits for the RTNL lock (a netdev moving between namespaces holds it
	                        for tens of milliseconds). */
	VFP_NETOP_RX_AGG,    /* in: name, agg_clear, agg_set (VFP_RX_AGG_* bits); out: out_agg, out_agg_fixed.
	                        Receive aggregation features through SIOCETHTOOL (what `ethtool -K` changes):
	                        out_agg is what was requested before the change (to give back), out_agg_fixed
	                        the bits the device cannot change (skipped). Both 0 and nothing changed: read. */
	VFP_NETOP_LINK_LIST, /* in: want_ifindex (0: every link); out: out_links (the first VFP_NETOP_MAX_LINKS),
	                        out_nlinks (all), and with want_ifindex, found. An RTM_GETLINK dump (or, by index,
	                        one RTM_GETLINK): what `ip -d link show` says of each link's kind, lower or peer
	                        link and parent device, without a process. */
};

/* Receive aggregation: every way a netdev merges received frames into one larger than
 * its MTU. A data plane reading frames off the netdev (AF_PACKET, AF_XDP in SKB mode)
 * gets such a frame whole and cannot fit it in a ring slot. */
enum vfp_rx_agg {
	VFP_RX_AGG_GRO = 1 << 0,      /* rx-gro (generic-receive-offload) */
	VFP_RX_AGG_LRO = 1 << 1,      /* rx-lro */
	VFP_RX_AGG_GRO_HW = 1 << 2,   /* rx-gro-hw */
	VFP_RX_AGG_GRO_LIST = 1 << 3, /* rx-gro-list */
	VFP_RX_AGG_UDP_FWD = 1 << 4,  /* rx-udp-gro-forwarding */
	VFP_RX_AGG__ALL = (1 << 5) - 1
};

#define VFP_NETOP_MAX_ADDRS 16
#define VFP_NETOP_MAX_LINKS 64

/* A link as LINK_LIST reads it. */
struct vfp_netop_link {
	int ifindex;
	int link;              /* IFLA_LINK (a veth's peer, a VLAN's lower link); 0 when absent */
	int has_netnsid;       /* IFLA_LINK_NETNSID present: the link is in another namespace */
	int netnsid;           /* its value (-1: the kernel has no id for that namespace here) */
	char name[16];         /* IFLA_IFNAME */
	char kind[16];         /* IFLA_LINKINFO / IFLA_INFO_KIND, "" when none */
	char parent[64];       /* IFLA_PARENT_DEV_NAME (a PCI function's address), "" when none */
};

struct vfp_netop_addr {
	uint8_t family;        /* AF_INET or AF_INET6 */
	uint8_t prefix;
	uint8_t scope;         /* RT_SCOPE_UNIVERSE 0, LINK 253, HOST 254 */
	uint8_t addr[16];
};

struct vfp_netop {
	int kind;
	char name[16];
	char new_name[16];     /* LINK_SET: "" keeps the name */
	uint8_t mac[6];
	int has_mac;
	int mtu;               /* LINK_SET: 0 keeps it */
	int up;                /* LINK_SET: -1 keep, 0 down, 1 up; MADDR: 1 join, 0 leave */
	char netns_path[4096]; /* LINK_SET: "" stays, else move into the namespace at this path */
	int family;            /* ADDR_ADD, ROUTE_ADD: AF_INET or AF_INET6 */
	uint8_t addr[16];
	int prefix;
	int nodad;
	uint8_t gw[16];
	int has_gw;
	char path[128];        /* SYSCTL: e.g. net/ipv4/conf/net1/arp_notify */
	char value[32];
	int optional;          /* SYSCTL: a missing file is not an error; ROUTE: nor one already there */
	int agg_clear;         /* RX_AGG: VFP_RX_AGG_* bits to switch off */
	int agg_set;           /* RX_AGG: bits to switch on (after agg_clear) */
	int out_agg;           /* RX_AGG: the bits requested before */
	int out_agg_fixed;     /* RX_AGG: the bits the device cannot change */
	/* LINK_GET results */
	int found;
	int ifindex;
	uint8_t out_mac[6];
	int out_mtu;
	int out_up;
	int out_running;       /* IFF_RUNNING: up with carrier (the kernel's operational state) */
	char out_name[16];     /* the netdev's own name (name may be one of its altnames) */
	/* ADDR_LIST results */
	struct vfp_netop_addr out_addrs[VFP_NETOP_MAX_ADDRS];
	int out_naddrs;
	/* LINK_LIST */
	int want_ifindex;
	struct vfp_netop_link out_links[VFP_NETOP_MAX_LINKS];
	int out_nlinks;
};

/*
 * Runs OPS[0..n) in order inside the namespace at NETNS_PATH (NULL or "": the caller's).
 * Returns 0, or -errno of the first failure with its index in *failed_at.
 */
int vfp_netops_run(const char *netns_path, struct vfp_netop *ops, int n, int *failed_at);

#ifdef __cplusplus
}
#endif

#endif
