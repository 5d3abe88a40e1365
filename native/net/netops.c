/*
 * rtnetlink batches in a network namespace (see netops.h). Each request carries
 * NLM_F_ACK and is answered before the next is sent, so a failure is reported with the
 * operation that caused it and nothing after it runs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "netops.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <net/if_arp.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* Big enough for any single request built here. */
#define NL_BUF 1024

struct nl_req {
	struct nlmsghdr h;
	char body[NL_BUF];
};

/* Appends an attribute. Addressed from the whole request, so the compiler sees the
 * buffer the attribute lands in (not just the header). */
static void nl_attr(struct nl_req *r, unsigned short type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)r + NLMSG_ALIGN(r->h.nlmsg_len));
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	r->h.nlmsg_len = NLMSG_ALIGN(r->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

/* Sends one request and reads what answers it (messages of its sequence number) until
 * the acknowledgement of a request or the NLMSG_DONE of a dump, handing every other
 * message to ON_MSG when given (which stops the exchange by returning < 0). 0 or
 * -errno. 32 KiB: a dump's datagrams are larger than a request's answer. */
static int nl_exchange(int fd, struct nlmsghdr *h, uint32_t seq, int (*on_msg)(const struct nlmsghdr *m, void *arg),
		       void *arg)
{
	h->nlmsg_flags |= NLM_F_REQUEST;
	h->nlmsg_seq = seq;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	if (sendto(fd, h, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	char buf[32768];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (struct nlmsghdr *r = (struct nlmsghdr *)buf; NLMSG_OK(r, (unsigned)n); r = NLMSG_NEXT(r, n)) {
			if (r->nlmsg_seq != seq)
				continue;
			if (r->nlmsg_type == NLMSG_DONE)
				return 0;
			if (r->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(r);
				return e->error; /* 0 is the ACK itself */
			}
			if (on_msg) {
				int rc = on_msg(r, arg);
				if (rc < 0)
					return rc;
			}
		}
	}
}

/* Sends one request and waits for its acknowledgement: 0 or -errno. */
static int nl_talk(int fd, struct nlmsghdr *h, uint32_t seq)
{
	h->nlmsg_flags |= NLM_F_ACK;
	return nl_exchange(fd, h, seq, NULL, NULL);
}

static int link_index(int sock, const char *name)
{
	struct ifreq ifr = { 0 };
	if (strlen(name) >= IFNAMSIZ)
		return -EINVAL;
	strcpy(ifr.ifr_name, name);
	if (ioctl(sock, SIOCGIFINDEX, &ifr) < 0)
		return -errno;
	return ifr.ifr_ifindex;
}

static int link_get(int sock, struct vfp_netop *op)
{
	struct ifreq ifr = { 0 };
	strcpy(ifr.ifr_name, op->name);
	if (ioctl(sock, SIOCGIFINDEX, &ifr) < 0) {
		if (errno == ENODEV) {
			op->found = 0;
			return 0;
		}
		return -errno;
	}
	op->found = 1;
	op->ifindex = ifr.ifr_ifindex;
	/* The kernel finds a netdev by an altname too; its own name is the one by index. */
	struct ifreq nr = { 0 };
	nr.ifr_ifindex = op->ifindex;
	if (ioctl(sock, SIOCGIFNAME, &nr) == 0)
		memcpy(op->out_name, nr.ifr_name, sizeof(op->out_name));
	else
		snprintf(op->out_name, sizeof(op->out_name), "%s", op->name);
	op->out_name[sizeof(op->out_name) - 1] = 0;
	if (ioctl(sock, SIOCGIFHWADDR, &ifr) < 0)
		return -errno;
	memcpy(op->out_mac, ifr.ifr_hwaddr.sa_data, 6);
	if (ioctl(sock, SIOCGIFMTU, &ifr) < 0)
		return -errno;
	op->out_mtu = ifr.ifr_mtu;
	if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
		return -errno;
	op->out_up = (ifr.ifr_flags & IFF_UP) != 0;
	op->out_running = (ifr.ifr_flags & IFF_RUNNING) != 0;
	return 0;
}

/* An empty request of TYPE whose fixed part (ifinfomsg, ifaddrmsg, rtmsg) is PAYLOAD bytes. */
static void *req_init(struct nl_req *r, uint16_t type, uint16_t flags, size_t payload)
{
	memset(r, 0, sizeof(*r));
	r->h.nlmsg_len = NLMSG_LENGTH(payload);
	r->h.nlmsg_type = type;
	r->h.nlmsg_flags = flags;
	return NLMSG_DATA(&r->h);
}

static void link_msg(struct nl_req *r, int ifindex)
{
	struct ifinfomsg *ifi = req_init(r, RTM_NEWLINK, 0, sizeof(struct ifinfomsg));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
}

/*
 * Without a move: down first (a rename needs the link down), then name, MAC, MTU, up,
 * one request each. With a move (netns_path): down first, then ONE request that moves
 * the link and, in the target namespace, gives it the new name, MAC, MTU and up. The
 * kernel moves it under its own name (or under the new one, when its own is taken
 * there) and renames it after: a new name taken in the target fails the request with
 * the link already moved, under its own name. A name that exists only in the source
 * namespace (a host's "eth0") is no obstacle, as it would be to a rename before the move.
 */
static int link_set(int fd, int sock, struct vfp_netop *op, uint32_t *seq)
{
	int idx = link_index(sock, op->name);
	if (idx < 0)
		return idx;
	struct nl_req r;
	int err;
	int move = op->netns_path[0] != 0;
	if (op->up == 0) {
		link_msg(&r, idx);
		struct ifinfomsg *ifi = NLMSG_DATA(&r.h);
		ifi->ifi_change = IFF_UP;
		ifi->ifi_flags = 0;
		if ((err = nl_talk(fd, &r.h, ++*seq)))
			return err;
	}
	int nsfd = -1;
	if (move) {
		nsfd = open(op->netns_path, O_RDONLY | O_CLOEXEC);
		if (nsfd < 0)
			return -errno;
		link_msg(&r, idx);
		uint32_t v = (uint32_t)nsfd;
		nl_attr(&r, IFLA_NET_NS_FD, &v, sizeof(v));
	}
	if (op->new_name[0]) {
		if (!move)
			link_msg(&r, idx);
		nl_attr(&r, IFLA_IFNAME, op->new_name, strlen(op->new_name) + 1);
		if (!move && (err = nl_talk(fd, &r.h, ++*seq)))
			return err;
	}
	if (op->has_mac) {
		if (!move)
			link_msg(&r, idx);
		nl_attr(&r, IFLA_ADDRESS, op->mac, 6);
		if (!move && (err = nl_talk(fd, &r.h, ++*seq)))
			return err;
	}
	if (op->mtu > 0) {
		if (!move)
			link_msg(&r, idx);
		uint32_t mtu = (uint32_t)op->mtu;
		nl_attr(&r, IFLA_MTU, &mtu, sizeof(mtu));
		if (!move && (err = nl_talk(fd, &r.h, ++*seq)))
			return err;
	}
	if (op->up == 1) {
		if (!move)
			link_msg(&r, idx);
		struct ifinfomsg *ifi = NLMSG_DATA(&r.h);
		ifi->ifi_change = IFF_UP;
		ifi->ifi_flags = IFF_UP;
		if (!move && (err = nl_talk(fd, &r.h, ++*seq)))
			return err;
	}
	if (move) {
		err = nl_talk(fd, &r.h, ++*seq);
		close(nsfd);
		if (err)
			return err;
	}
	return 0;
}

static int addr_add(int fd, int sock, struct vfp_netop *op, uint32_t *seq)
{
	int idx = link_index(sock, op->name);
	if (idx < 0)
		return idx;
	struct nl_req r;
	struct ifaddrmsg *ifa = req_init(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, sizeof(struct ifaddrmsg));
	ifa->ifa_family = (unsigned char)op->family;
	ifa->ifa_prefixlen = (unsigned char)op->prefix;
	ifa->ifa_index = (unsigned)idx;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	if (op->nodad)
		ifa->ifa_flags = IFA_F_NODAD;
	size_t len = op->family == AF_INET ? 4 : 16;
	nl_attr(&r, IFA_LOCAL, op->addr, len);
	nl_attr(&r, IFA_ADDRESS, op->addr, len);
	return nl_talk(fd, &r.h, ++*seq);
}

static int route_add(int fd, int sock, struct vfp_netop *op, uint32_t *seq)
{
	int idx = link_index(sock, op->name);
	if (idx < 0)
		return idx;
	struct nl_req r;
	struct rtmsg *rt = req_init(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, sizeof(struct rtmsg));
	rt->rtm_family = (unsigned char)op->family;
	rt->rtm_dst_len = (unsigned char)op->prefix;
	rt->rtm_table = RT_TABLE_MAIN;
	rt->rtm_protocol = RTPROT_BOOT;
	rt->rtm_scope = op->has_gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
	rt->rtm_type = RTN_UNICAST;
	size_t len = op->family == AF_INET ? 4 : 16;
	if (op->prefix > 0)
		nl_attr(&r, RTA_DST, op->addr, len);
	if (op->has_gw)
		nl_attr(&r, RTA_GATEWAY, op->gw, len);
	uint32_t oif = (uint32_t)idx;
	nl_attr(&r, RTA_OIF, &oif, sizeof(oif));
	int err = nl_talk(fd, &r.h, ++*seq);
	/* A route the namespace has already (another interface of the same network set it):
	 * the first one wins, as the reference plugins' ConfigureIface has it. */
	return err == -EEXIST && op->optional ? 0 : err;
}

/* /proc/sys/net resolves against the calling thread's namespace, so this is the pod's. */
static int sysctl_write(struct vfp_netop *op)
{
	if (strstr(op->path, ".."))
		return -EINVAL;
	char p[160];
	snprintf(p, sizeof(p), "/proc/sys/%s", op->path);
	int f = open(p, O_WRONLY | O_CLOEXEC);
	if (f < 0)
		return (errno == ENOENT && op->optional) ? 0 : -errno;
	ssize_t n = write(f, op->value, strlen(op->value));
	int err = n < 0 ? -errno : 0;
	close(f);
	return err;
}

/* A link-layer multicast address on the link's receive filter (what `ip maddr add`
 * does): SIOCADDMULTI counts joins, so each join is matched by one leave. */
static int maddr(int sock, struct vfp_netop *op)
{
	if (!op->has_mac || !(op->mac[0] & 1))
		return -EINVAL;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", op->name);
	ifr.ifr_hwaddr.sa_family = AF_UNSPEC;
	memcpy(ifr.ifr_hwaddr.sa_data, op->mac, 6);
	if (ioctl(sock, op->up == 1 ? SIOCADDMULTI : SIOCDELMULTI, &ifr) < 0)
		return (op->up != 1 && errno == ENOENT) ? 0 : -errno;
	return 0;
}

/* One address of an RTM_GETADDR dump: kept when it is op's link's. */
static int addr_one(const struct nlmsghdr *h, void *arg)
{
	struct vfp_netop *op = arg;
	if (h->nlmsg_type != RTM_NEWADDR)
		return 0;
	const struct ifaddrmsg *ifa = NLMSG_DATA(h);
	if ((int)ifa->ifa_index != op->ifindex)
		return 0;
	const void *local = NULL, *address = NULL;
	int alen = (int)IFA_PAYLOAD(h);
	for (const struct rtattr *a = IFA_RTA(ifa); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
		if (a->rta_type == IFA_LOCAL)
			local = RTA_DATA(a);
		else if (a->rta_type == IFA_ADDRESS)
			address = RTA_DATA(a);
	}
	const void *src = local ? local : address;
	if (!src)
		return 0;
	if (op->out_naddrs < VFP_NETOP_MAX_ADDRS) {
		struct vfp_netop_addr *o = &op->out_addrs[op->out_naddrs];
		memset(o, 0, sizeof(*o));
		o->family = ifa->ifa_family;
		o->prefix = ifa->ifa_prefixlen;
		o->scope = ifa->ifa_scope;
		memcpy(o->addr, src, ifa->ifa_family == AF_INET ? 4 : 16);
	}
	op->out_naddrs++;
	return 0;
}

/* One RTM_GETADDR dump of FAMILY (AF_INET or AF_INET6; an AF_UNSPEC dump goes through
 * rtnetlink's dump-all, which takes RTNL), keeping op's link's addresses. */
static int addr_dump(int fd, int family, struct vfp_netop *op, uint32_t *seq)
{
	struct nl_req r;
	struct ifaddrmsg *ifa = req_init(&r, RTM_GETADDR, NLM_F_DUMP, sizeof(struct ifaddrmsg));
	ifa->ifa_family = (unsigned char)family;
	int rc = nl_exchange(fd, &r.h, ++*seq, addr_one, op);
	/* A kernel without IPv6 has no AF_INET6 dump: no addresses of it. */
	return family == AF_INET6 && rc == -EAFNOSUPPORT ? 0 : rc;
}

/* The link (as LINK_GET) and its addresses of both families. */
static int addr_list(int fd, int sock, struct vfp_netop *op, uint32_t *seq)
{
	int e = link_get(sock, op);
	if (e || !op->found)
		return e;
	op->out_naddrs = 0;
	e = addr_dump(fd, AF_INET, op, seq);
	return e ? e : addr_dump(fd, AF_INET6, op, seq);
}

/* The kernel's names of the features behind VFP_RX_AGG_* (net/ethtool/common.c
 * netdev_features_strings), in bit order. Looked up by name: feature bit numbers are
 * the kernel's own and move between versions. */
static const char *const rx_agg_names[] = { "rx-gro", "rx-lro", "rx-gro-hw", "rx-gro-list", "rx-udp-gro-forwarding" };

static int ethtool_ioctl(int sock, const char *name, void *cmd)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_data = cmd;
	return ioctl(sock, SIOCETHTOOL, &ifr) < 0 ? -errno : 0;
}

/* Reads (and with agg_clear/agg_set, changes) the receive aggregation features, as
 * `ethtool -k/-K` does: the feature names, to find each one's bit, then the feature
 * blocks, then one ETHTOOL_SFEATURES for the changeable ones. Under RTNL (dev_ethtool). */
static int rx_agg(int sock, struct vfp_netop *op)
{
	struct { struct ethtool_sset_info h; uint32_t count; } info = { .h = { .cmd = ETHTOOL_GSSET_INFO, .sset_mask = 1ull << ETH_SS_FEATURES } };
	int err = ethtool_ioctl(sock, op->name, &info);
	if (err)
		return err;
	uint32_t count = info.h.sset_mask ? info.count : 0;
	if (!count || count > 4096)
		return -EOPNOTSUPP;
	uint32_t blocks = (count + 31) / 32;
	struct ethtool_gstrings *names = calloc(1, sizeof(*names) + (size_t)count * ETH_GSTRING_LEN);
	struct ethtool_gfeatures *get = calloc(1, sizeof(*get) + blocks * sizeof(get->features[0]));
	struct ethtool_sfeatures *set = calloc(1, sizeof(*set) + blocks * sizeof(set->features[0]));
	if (!names || !get || !set) {
		err = -ENOMEM;
		goto out;
	}
	names->cmd = ETHTOOL_GSTRINGS;
	names->string_set = ETH_SS_FEATURES;
	names->len = count;
	get->cmd = ETHTOOL_GFEATURES;
	get->size = blocks;
	if ((err = ethtool_ioctl(sock, op->name, names)) || (err = ethtool_ioctl(sock, op->name, get)))
		goto out;
	set->cmd = ETHTOOL_SFEATURES;
	set->size = blocks;
	int change = 0;
	op->out_agg = op->out_agg_fixed = 0;
	for (unsigned k = 0; k < sizeof(rx_agg_names) / sizeof(rx_agg_names[0]); k++) {
		uint32_t i = 0;
		while (i < count && strncmp((const char *)names->data + (size_t)i * ETH_GSTRING_LEN, rx_agg_names[k], ETH_GSTRING_LEN))
			i++;
		if (i == count) {
			op->out_agg_fixed |= 1 << k; /* this kernel does not have it: nothing to change */
			continue;
		}
		uint32_t b = i / 32, bit = 1u << (i % 32);
		const struct ethtool_get_features_block *g = &get->features[b];
		if (g->requested & bit)
			op->out_agg |= 1 << k;
		/* Changeable: in hw_features ("available") and not NETIF_F_NEVER_CHANGE. */
		if (!(g->available & bit) || (g->never_changed & bit)) {
			op->out_agg_fixed |= 1 << k;
			continue;
		}
		int want = op->agg_set & (1 << k) ? 1 : op->agg_clear & (1 << k) ? 0 : -1;
		if (want < 0 || want == !!(g->requested & bit))
			continue;
		set->features[b].valid |= bit;
		if (want)
			set->features[b].requested |= bit;
		change = 1;
	}
	/* A positive return (ETHTOOL_F_WISH…) says the device keeps a feature on that was
	 * asked off, or the reverse, because another feature depends on it: not an error
	 * here; the caller reads back what it got if it needs to know. */
	if (change)
		err = ethtool_ioctl(sock, op->name, set);
out:
	free(names);
	free(get);
	free(set);
	return err;
}

/* One RTM_NEWLINK of a dump or a get: the fields of a vfp_netop_link. */
static int link_one(const struct nlmsghdr *h, void *arg)
{
	struct vfp_netop *op = arg;
	if (h->nlmsg_type != RTM_NEWLINK)
		return 0;
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	if (op->want_ifindex && ifi->ifi_index != op->want_ifindex)
		return 0;
	op->found = 1;
	if (op->out_nlinks >= VFP_NETOP_MAX_LINKS) {
		op->out_nlinks++;
		return 0;
	}
	struct vfp_netop_link *l = &op->out_links[op->out_nlinks++];
	memset(l, 0, sizeof(*l));
	l->ifindex = ifi->ifi_index;
	int len = (int)IFLA_PAYLOAD(h);
	for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		size_t n = RTA_PAYLOAD(a);
		switch (a->rta_type) {
		case IFLA_IFNAME:
			snprintf(l->name, sizeof(l->name), "%.*s", (int)n, (const char *)RTA_DATA(a));
			break;
		case IFLA_LINK:
			if (n >= 4)
				memcpy(&l->link, RTA_DATA(a), 4);
			break;
		case IFLA_LINK_NETNSID:
			if (n >= 4) {
				memcpy(&l->netnsid, RTA_DATA(a), 4);
				l->has_netnsid = 1;
			}
			break;
		case IFLA_PARENT_DEV_NAME:
			snprintf(l->parent, sizeof(l->parent), "%.*s", (int)n, (const char *)RTA_DATA(a));
			break;
		case IFLA_LINKINFO: {
			int il = (int)n;
			for (const struct rtattr *b = RTA_DATA(a); RTA_OK(b, il); b = RTA_NEXT(b, il))
				if (b->rta_type == IFLA_INFO_KIND)
					snprintf(l->kind, sizeof(l->kind), "%.*s", (int)RTA_PAYLOAD(b), (const char *)RTA_DATA(b));
			break;
		}
		}
	}
	return 0;
}

/* The namespace's links (an RTM_GETLINK dump), or the one of want_ifindex (an
 * RTM_GETLINK for it: none is no error, found stays 0). */
static int link_list(int fd, struct vfp_netop *op, uint32_t *seq)
{
	struct nl_req r;
	op->found = 0;
	op->out_nlinks = 0;
	struct ifinfomsg *ifi = req_init(&r, RTM_GETLINK, op->want_ifindex ? NLM_F_ACK : NLM_F_DUMP, sizeof(struct ifinfomsg));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = op->want_ifindex;
	/* No VF list, no stats the kernel can leave out: smaller messages. */
	uint32_t mask = RTEXT_FILTER_SKIP_STATS;
	nl_attr(&r, IFLA_EXT_MASK, &mask, sizeof(mask));
	int rc = nl_exchange(fd, &r.h, ++*seq, link_one, op);
	return op->want_ifindex && rc == -ENODEV ? 0 : rc;
}

struct batch {
	const char *netns_path;
	struct vfp_netop *ops;
	int n;
	int failed_at;
	int err;
};

static void *run_batch(void *arg)
{
	struct batch *b = arg;
	b->failed_at = -1;
	if (b->netns_path && b->netns_path[0]) {
		int nsfd = open(b->netns_path, O_RDONLY | O_CLOEXEC);
		if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) < 0) {
			b->err = -errno;
			if (nsfd >= 0)
				close(nsfd);
			return NULL;
		}
		close(nsfd);
	}
	/* Both sockets are made after setns, so they belong to the target namespace. */
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sock < 0) {
		b->err = -errno;
		goto out;
	}
	uint32_t seq = 0;
	for (int i = 0; i < b->n; i++) {
		struct vfp_netop *op = &b->ops[i];
		int err;
		switch (op->kind) {
		case VFP_NETOP_LINK_GET: err = link_get(sock, op); break;
		case VFP_NETOP_LINK_SET: err = link_set(fd, sock, op, &seq); break;
		case VFP_NETOP_ADDR_ADD: err = addr_add(fd, sock, op, &seq); break;
		case VFP_NETOP_ROUTE_ADD: err = route_add(fd, sock, op, &seq); break;
		case VFP_NETOP_SYSCTL: err = sysctl_write(op); break;
		case VFP_NETOP_MADDR: err = maddr(sock, op); break;
		case VFP_NETOP_ADDR_LIST: err = addr_list(fd, sock, op, &seq); break;
		case VFP_NETOP_RX_AGG: err = rx_agg(sock, op); break;
		case VFP_NETOP_LINK_LIST: err = link_list(fd, op, &seq); break;
		default: err = -EINVAL;
		}
		if (err) {
			b->err = err;
			b->failed_at = i;
			break;
		}
	}
out:
	if (fd >= 0)
		close(fd);
	if (sock >= 0)
		close(sock);
	return NULL;
}

int vfp_netops_run(const char *netns_path, struct vfp_netop *ops, int n, int *failed_at)
{
	struct batch b = { .netns_path = netns_path, .ops = ops, .n = n };
	pthread_t t;
	int e = pthread_create(&t, NULL, run_batch, &b);
	if (e)
		return -e;
	pthread_join(t, NULL);
	*failed_at = b.failed_at;
	return b.err;
}
