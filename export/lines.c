/* lines.c - stdout/stderr chunks to log lines (see lines.h). */
#include "lines.h"

#include <stdlib.h>
#include <string.h>

struct slot {
	uint32_t writer; /* 0: free */
	uint8_t fd;
	uint8_t has_trace;
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint64_t ts_ns; /* first chunk of the partial line */
	uint64_t use;	/* LRU stamp */
	size_t len;
	char *buf; /* CRD_LINES_MAX, allocated on first use */
};

static struct {
	struct slot slots[CRD_LINES_SLOTS];
	uint64_t clock;
	/* Completed lines: text in arena (offsets until taken). */
	struct crd_log_line *out;
	size_t *off;
	size_t n, cap;
	char *arena;
	size_t used, arena_cap;
} L;

static void emit(struct slot *s, int truncated)
{
	size_t len = s->len;

	if (len && s->buf[len - 1] == '\r')
		len--;
	s->len = 0;
	if (!len)
		return;
	if (L.n == L.cap) {
		size_t c = L.cap ? L.cap * 2 : 256;
		struct crd_log_line *o = realloc(L.out, c * sizeof(*o));
		size_t *f;
		if (!o)
			return;
		L.out = o;
		if (!(f = realloc(L.off, c * sizeof(*f))))
			return;
		L.off = f;
		L.cap = c;
	}
	if (L.used + len > L.arena_cap) {
		size_t c = L.arena_cap ? L.arena_cap : 65536;
		char *a;
		while (c < L.used + len)
			c *= 2;
		if (!(a = realloc(L.arena, c)))
			return;
		L.arena = a;
		L.arena_cap = c;
	}
	memcpy(L.arena + L.used, s->buf, len);
	L.off[L.n] = L.used;
	L.used += len;
	L.out[L.n] = (struct crd_log_line){
	    .ts_ms = (int64_t)(s->ts_ns / 1000000u),
	    .len = len,
	    .fd = s->fd,
	    .has_trace = s->has_trace,
	    .truncated = (uint8_t)truncated,
	};
	memcpy(L.out[L.n].trace_id, s->trace_id, 16);
	memcpy(L.out[L.n].span_id, s->span_id, 8);
	L.n++;
}

/* The slot of (writer, fd); a free one, or the least recently used one
 * after shipping its partial line. NULL when out of memory. */
static struct slot *slot_for(const struct crd_logrec *l)
{
	struct slot *s, *lru = NULL, *free_s = NULL;

	for (size_t i = 0; i < CRD_LINES_SLOTS; i++) {
		s = &L.slots[i];
		if (s->writer == l->writer && s->fd == l->fd)
			return s;
		if (!s->writer && !free_s)
			free_s = s;
		if (!lru || s->use < lru->use)
			lru = s;
	}
	s = free_s ? free_s : lru;
	if (s->len)
		emit(s, 0);
	if (!s->buf && !(s->buf = malloc(CRD_LINES_MAX)))
		return NULL;
	s->writer = l->writer;
	s->fd = l->fd;
	s->len = 0;
	return s;
}

void crd_lines_feed(const struct crd_logrec *l)
{
	struct slot *s = slot_for(l);
	const char *p = l->data, *e = l->data + l->len;
	size_t before = L.n;

	if (!s)
		return;
	s->use = ++L.clock;
	while (p < e) {
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		const char *end = nl ? nl : e;

		while (p < end) {
			size_t k = (size_t)(end - p);
			if (!s->len) {
				/* A new line: its time and context. */
				s->ts_ns = l->ts_ns;
				s->has_trace = l->has_trace;
				memcpy(s->trace_id, l->trace_id, 16);
				memcpy(s->span_id, l->span_id, 8);
			} else if (!s->has_trace && l->has_trace) {
				s->has_trace = 1;
				memcpy(s->trace_id, l->trace_id, 16);
				memcpy(s->span_id, l->span_id, 8);
			}
			if (k > CRD_LINES_MAX - s->len)
				k = CRD_LINES_MAX - s->len;
			memcpy(s->buf + s->len, p, k);
			s->len += k;
			p += k;
			if (s->len == CRD_LINES_MAX)
				emit(s, 0); /* a long line, in pieces */
		}
		if (nl) {
			emit(s, 0);
			p = nl + 1;
		}
	}
	/* The rest of the write was not captured: the line it was in ends
	 * here, marked, even when it just went out as a full piece. */
	if (l->cut && s->len)
		emit(s, 1);
	else if (l->cut && L.n > before)
		L.out[L.n - 1].truncated = 1;
}

size_t crd_lines_take(uint64_t now_ns, int all, const struct crd_log_line **out)
{
	for (size_t i = 0; i < CRD_LINES_SLOTS; i++) {
		struct slot *s = &L.slots[i];
		if (s->len &&
		    (all || now_ns >= s->ts_ns + (uint64_t)CRD_LINES_PARTIAL_MS * 1000000u))
			emit(s, 0);
	}
	for (size_t i = 0; i < L.n; i++)
		L.out[i].text = L.arena + L.off[i];
	*out = L.out;
	return L.n;
}

void crd_lines_clear(void)
{
	L.n = 0;
	L.used = 0;
}

void crd_lines_reset(void)
{
	for (size_t i = 0; i < CRD_LINES_SLOTS; i++) {
		L.slots[i].writer = 0;
		L.slots[i].len = 0;
	}
	crd_lines_clear();
}
