/* SPDX-License-Identifier: MIT */
#include "irq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <thunderpass/log.h>

#include "util.h"

static const char *const index_names[TP_IRQ_INDEX_COUNT] = { "INTx", "MSI", "MSI-X", "ERR",
							      "REQ" };

int tp_irqs_init(struct tp_irqs *q, const char *who, const uint32_t count[TP_IRQ_INDEX_COUNT])
{
	memset(q, 0, sizeof(*q));
	q->who = who;
	pthread_mutex_init(&q->lock, NULL);
	for (unsigned i = 0; i < TP_IRQ_INDEX_COUNT; i++) {
		struct tp_irq_index *x = &q->idx[i];

		x->count = TP_MIN(count[i], (uint32_t)TP_IRQ_MAX_VECTORS);
		if (!x->count)
			continue;
		x->fds = tp_malloc(x->count * sizeof(int));
		if (x->fds)
			for (uint32_t v = 0; v < x->count; v++)
				x->fds[v] = -1;
		x->vraised = tp_calloc(x->count, sizeof(uint64_t));
		if (!x->fds || !x->vraised) {
			tp_irqs_destroy(q);
			return -ENOMEM;
		}
	}
	return 0;
}

static void close_range_locked(struct tp_irq_index *x, uint32_t start, uint32_t count)
{
	for (uint32_t v = start; v < start + count; v++) {
		if (x->fds[v] >= 0) {
			close(x->fds[v]);
			x->fds[v] = -1;
			x->live--;
		}
	}
}

void tp_irqs_clear(struct tp_irqs *q)
{
	pthread_mutex_lock(&q->lock);
	for (unsigned i = 0; i < TP_IRQ_INDEX_COUNT; i++)
		if (q->idx[i].fds)
			close_range_locked(&q->idx[i], 0, q->idx[i].count);
	q->intx_masked = false;
	pthread_mutex_unlock(&q->lock);
}

void tp_irqs_destroy(struct tp_irqs *q)
{
	tp_irqs_clear(q);
	for (unsigned i = 0; i < TP_IRQ_INDEX_COUNT; i++) {
		free(q->idx[i].fds);
		q->idx[i].fds = NULL;
		free(q->idx[i].vraised);
		q->idx[i].vraised = NULL;
	}
	pthread_mutex_destroy(&q->lock);
}

uint32_t tp_irqs_info_flags(uint32_t index)
{
	switch (index) {
	case TP_IRQ_INTX:
		return TP_VU_IRQ_INFO_EVENTFD | TP_VU_IRQ_INFO_MASKABLE | TP_VU_IRQ_INFO_AUTOMASKED;
	case TP_IRQ_MSIX:
		/* No NORESIZE: the client may add vectors one at a time, with no
		 * window where all of them are torn down and rebuilt. */
		return TP_VU_IRQ_INFO_EVENTFD;
	default:
		return TP_VU_IRQ_INFO_EVENTFD | TP_VU_IRQ_INFO_NORESIZE;
	}
}

static void signal_fd(int fd)
{
	uint64_t one = 1;
	ssize_t n = write(fd, &one, sizeof(one));

	(void)n; /* a full counter already means "pending" */
}

/* Fires INTx if it is asserted and not masked; masks it (automasked). */
static void intx_fire_locked(struct tp_irqs *q)
{
	struct tp_irq_index *x = &q->idx[TP_IRQ_INTX];

	if (!q->intx_level || q->intx_masked || !x->count || x->fds[0] < 0)
		return;
	q->intx_masked = true;
	x->raised++;
	x->vraised[0]++;
	signal_fd(x->fds[0]);
}

static void trigger_locked(struct tp_irqs *q, uint32_t index, uint32_t v)
{
	struct tp_irq_index *x = &q->idx[index];

	if (index == TP_IRQ_INTX) {
		/* A loopback trigger is a pulse: assert, fire, and let go. */
		bool level = q->intx_level;

		q->intx_level = true;
		intx_fire_locked(q);
		q->intx_level = level;
		return;
	}
	if (x->fds[v] >= 0) {
		x->raised++;
		x->vraised[v]++;
		signal_fd(x->fds[v]);
	} else {
		q->dropped++;
	}
}

static int set_validate(struct tp_irqs *q, const struct tp_vu_irq_set *s, uint32_t len,
			unsigned nfds)
{
	uint32_t data = s->flags & TP_VU_IRQ_DATA_TYPES, act = s->flags & TP_VU_IRQ_ACTIONS;
	struct tp_irq_index *x;

	if (s->index >= TP_IRQ_INDEX_COUNT)
		return -EINVAL;
	x = &q->idx[s->index];
	if ((s->flags & ~(TP_VU_IRQ_DATA_TYPES | TP_VU_IRQ_ACTIONS)) || !tp_is_pow2(data) ||
	    !tp_is_pow2(act))
		return -EINVAL;
	if (!x->count)
		return -EINVAL;
	if (s->count == 0) {
		/* Only "disable the whole index" may name no vectors. */
		if (data != TP_VU_IRQ_DATA_NONE || act != TP_VU_IRQ_ACTION_TRIGGER)
			return -EINVAL;
	} else if (s->start >= x->count || s->count > x->count - s->start) {
		return -EINVAL;
	}
	if ((act == TP_VU_IRQ_ACTION_MASK || act == TP_VU_IRQ_ACTION_UNMASK) &&
	    (s->index != TP_IRQ_INTX || data == TP_VU_IRQ_DATA_EVENTFD))
		return -EINVAL;
	if (data == TP_VU_IRQ_DATA_BOOL && len < s->count)
		return -EINVAL;
	if (data == TP_VU_IRQ_DATA_EVENTFD && nfds && nfds != s->count)
		return -EINVAL;
	if (data != TP_VU_IRQ_DATA_EVENTFD && nfds)
		return -EINVAL;
	return 0;
}

static void assign_locked(struct tp_irqs *q, const struct tp_vu_irq_set *s, int *fds,
			  unsigned nfds)
{
	struct tp_irq_index *x = &q->idx[s->index];

	close_range_locked(x, s->start, s->count);
	/* No fds with a count: de-assign those vectors (QEMU does this). */
	for (unsigned i = 0; i < nfds; i++) {
		x->fds[s->start + i] = fds[i];
		fds[i] = -1;
		x->live++;
	}
	/* INTx: a level still up when the eventfd arrives must not be lost. */
	if (s->index == TP_IRQ_INTX && nfds) {
		q->intx_masked = false;
		intx_fire_locked(q);
	}
}

int tp_irqs_set(struct tp_irqs *q, const struct tp_vu_irq_set *s, const uint8_t *data,
		uint32_t len, int *fds, unsigned nfds)
{
	uint32_t dtype = s->flags & TP_VU_IRQ_DATA_TYPES, act = s->flags & TP_VU_IRQ_ACTIONS;
	int rc = set_validate(q, s, len, nfds);

	if (rc) {
		tp_warn(q->who, "SET_IRQS index %u start %u count %u flags %#x with %u fds: invalid",
			s->index, s->start, s->count, s->flags, nfds);
		goto out;
	}
	pthread_mutex_lock(&q->lock);
	if (act == TP_VU_IRQ_ACTION_TRIGGER) {
		if (dtype == TP_VU_IRQ_DATA_EVENTFD) {
			assign_locked(q, s, fds, nfds);
		} else if (s->count == 0) {
			close_range_locked(&q->idx[s->index], 0, q->idx[s->index].count);
		} else {
			for (uint32_t i = 0; i < s->count; i++)
				if (dtype == TP_VU_IRQ_DATA_NONE || data[i])
					trigger_locked(q, s->index, s->start + i);
		}
	} else {
		/* INTx mask/unmask (validated above). */
		bool on = dtype == TP_VU_IRQ_DATA_NONE || data[0];

		if (on && act == TP_VU_IRQ_ACTION_MASK)
			q->intx_masked = true;
		if (on && act == TP_VU_IRQ_ACTION_UNMASK) {
			q->intx_masked = false;
			intx_fire_locked(q);
		}
	}
	pthread_mutex_unlock(&q->lock);
	tp_dbg(q->who, "SET_IRQS %s start %u count %u flags %#x fds %u",
	       index_names[s->index], s->start, s->count, s->flags, nfds);
out:
	for (unsigned i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return rc;
}

void tp_irqs_raise(struct tp_irqs *q, uint32_t vector)
{
	pthread_mutex_lock(&q->lock);
	if (q->idx[TP_IRQ_MSIX].live) {
		if (vector < q->idx[TP_IRQ_MSIX].count)
			trigger_locked(q, TP_IRQ_MSIX, vector);
		else
			q->dropped++;
	} else if (q->idx[TP_IRQ_MSI].live) {
		if (vector < q->idx[TP_IRQ_MSI].count)
			trigger_locked(q, TP_IRQ_MSI, vector);
		else
			q->dropped++;
	} else if (!q->idx[TP_IRQ_INTX].live) {
		q->dropped++;
	}
	/* With INTx in use the device's level (tp_irqs_intx) is what counts. */
	pthread_mutex_unlock(&q->lock);
}

void tp_irqs_intx(struct tp_irqs *q, int level)
{
	pthread_mutex_lock(&q->lock);
	q->intx_level = level != 0;
	intx_fire_locked(q);
	pthread_mutex_unlock(&q->lock);
}

uint32_t tp_irqs_stats(struct tp_irqs *q, uint32_t index, uint64_t *raised, uint32_t n,
		       uint32_t *live)
{
	struct tp_irq_index *x;
	uint32_t count;

	if (index >= TP_IRQ_INDEX_COUNT) {
		*live = 0;
		return 0;
	}
	x = &q->idx[index];
	pthread_mutex_lock(&q->lock);
	count = x->count;
	*live = x->live;
	for (uint32_t v = 0; v < count && v < n; v++)
		raised[v] = x->vraised[v];
	pthread_mutex_unlock(&q->lock);
	return count;
}

void tp_irqs_reset_stats(struct tp_irqs *q)
{
	pthread_mutex_lock(&q->lock);
	for (unsigned i = 0; i < TP_IRQ_INDEX_COUNT; i++) {
		q->idx[i].raised = 0;
		if (q->idx[i].vraised)
			memset(q->idx[i].vraised, 0, q->idx[i].count * sizeof(uint64_t));
	}
	q->dropped = 0;
	pthread_mutex_unlock(&q->lock);
}
