/* SPDX-License-Identifier: Apache-2.0 */
/* The nftables backend's netlink socket: batches and dumps (nft_nl.c). */
#ifndef BERTH_PROXY_NFT_NL_H
#define BERTH_PROXY_NFT_NL_H

#include <libmnl/libmnl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct nft_sock;

/* A NETLINK_NETFILTER socket in the calling thread's netns. NULL + errno. */
struct nft_sock *nft_sock_open(void);
/* Accepts NULL. */
void nft_sock_close(struct nft_sock *s);

/*
 * Send iov (whole messages: BEGIN, nmsgs messages, END; sequence numbers and NLM_F_ACK,
 * on the last message only, are set here) in one sendmsg and read the
 * kernel's answer: its error reports and the last message's ACK.
 * 0, or the kernel's first -errno with *failed_index the message it refused
 * (SIZE_MAX when the batch as a whole was refused) and the extended-ACK text
 * in err. The kernel applies all of the batch or none of it.
 */
int nft_sock_batch(struct nft_sock *s, struct iovec *iov, size_t niov, size_t nmsgs,
		   size_t *failed_index, char *err, size_t errlen);

typedef int (*nft_dump_cb)(const struct nlmsghdr *nlh, void *data);
/* A dump request built by the caller (NLM_F_DUMP set); cb is a libmnl callback. */
int nft_sock_dump(struct nft_sock *s, struct nlmsghdr *req, nft_dump_cb cb, void *data);

#endif
