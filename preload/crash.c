/* crash.c - native crash capture (see crash.h).
 *
 * Signal safety: everything reachable from on_crash() and on_watchdog() is
 * async-signal-safe: system calls (sigaction, sigprocmask, sigaltstack,
 * open/openat, write, renameat, close via the real-symbol table, fstat,
 * mkdir, clock_gettime, gettid, tgkill, alarm, _exit), reads of tables
 * built before the crash, integer formatting of our own, and libunwind's
 * local unwinder, which is designed to run in signal handlers (its
 * lookups go through dl_iterate_phdr, which takes the loader lock: a crash
 * inside the loader on another thread could make it wait, which is what
 * the watchdog is for). No malloc, no stdio, no locks of ours.
 */
#define UNW_LOCAL_ONLY
#include "crash.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libunwind.h>
#include <link.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "config.h"
#include "ctx.h"
#include "log.h"
#include "real.h"
#include "rec.h"
#include "rollbar.h"
#include "spanspool.h"
#include "tracectx.h"

/* Modules (executable + shared objects) the table holds at most. */
#define CRD_CRASH_MAX_MODULES 512
/* Path bytes kept per module. */
#define CRD_MODULE_PATH_MAX 384
/* PT_LOAD segments kept per module (ld.so and ld -z separate-code make 4). */
#define CRD_MODULE_SEGS 8
/* Build-ids are 20 bytes (sha1) by default; allow up to 32. */
#define CRD_BUILD_ID_MAX 32
/* Modules found only in /proc/self/maps (loaded since the last table). */
#define CRD_MAPS_MODULES 16
/* The spool text is formatted into this static buffer. */
#define CRD_SPOOL_BUF (64 * 1024)
/* Alternate signal stacks: size of each, and how many the pool holds for
 * threads other than the main one (virtual memory, touched on use). */
#define CRD_ALTSTACK_SIZE (64 * 1024)
#define CRD_ALTSTACK_POOL 256
/* A second crashing thread waits this long (ms per round) for the
 * first to finish its report. */
#define CRD_LOSER_POLL_MS 50

/* libunwind's local unwinder, loaded privately (RTLD_LOCAL): linking it
 * would put its _Unwind_* in the global scope, interposing on the C++
 * runtime's unwinder. Resolved by name: UNW_LOCAL_ONLY makes unw_step
 * expand to _ULx86_64_step (or the aarch64 name). */
#define CRD_STR_(x)   #x
#define CRD_STR(x)    CRD_STR_(x)
#define CRD_LIBUNWIND "libunwind.so.8"
static struct {
	int (*init_local2)(unw_cursor_t *, unw_context_t *, int);
	int (*step)(unw_cursor_t *);
	int (*get_reg)(unw_cursor_t *, unw_regnum_t, unw_word_t *);
	int (*is_signal_frame)(unw_cursor_t *);
} uw;

static const int crash_sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
#define NCRASH_SIGS (sizeof(crash_sigs) / sizeof(crash_sigs[0]))

static int crash_on;
static int reports_on;			/* Rollbar crash reports (else: only spans are spooled) */
static struct sigaction prev_act[NSIG]; /* what each of ours replaced */

/* The crash in progress: the winning thread, its signal, its progress. */
static int owner_tid;			  /* atomic: 0 = none */
static volatile sig_atomic_t crash_signo; /* for the watchdog */
static volatile sig_atomic_t report_done; /* the winner wrote its report */
static volatile sig_atomic_t phase;	  /* nonzero: a fault jumps back */
static sigjmp_buf phase_jmp;

/* Facts gathered at init, written into every report. */
static char exe_path[CRD_MODULE_PATH_MAX];
static char host_name[256];

/* ---- module table (double-buffered: built aside, then published) ---- */

struct module {
	uintptr_t base; /* dlpi_addr: ELF address + base = run-time address */
	uintptr_t lo[CRD_MODULE_SEGS], hi[CRD_MODULE_SEGS];
	int nseg;
	uint8_t build_id[CRD_BUILD_ID_MAX];
	int build_id_len;
	char path[CRD_MODULE_PATH_MAX];
};

struct modtab {
	int n;
	unsigned long long adds, subs; /* dl_iterate_phdr counters at build */
	struct module m[CRD_CRASH_MAX_MODULES];
};

static struct modtab tabs[2];
static int cur_tab = -1; /* atomic: the published table, -1 = none */

/* ---- the report being built (winner only) ---- */

struct frame {
	uintptr_t pc;
	int module; /* table index, CRD_MAPS_BASE + k for maps modules, -1 */
	uintptr_t offset;
	char kind; /* 's' exact pc, 'c' return address (offset of pc - 1) */
};

#define CRD_MAPS_BASE 10000
struct maps_module {
	uintptr_t start; /* mapping start */
	uintptr_t end;
	uintptr_t pgoff; /* file offset of start */
	char path[CRD_MODULE_PATH_MAX];
};

static struct frame frames[CRD_CRASH_MAX_FRAMES];
static volatile int nframes;
static struct maps_module maps_mods[CRD_MAPS_MODULES];
static int nmaps_mods;
static char spool_buf[CRD_SPOOL_BUF];
static char maps_buf[8192];
static char req_line[64 + CRD_METHOD_MAX + CRD_TARGET_MAX];

/* ---- alternate stacks ---- */

static char *alt_pool; /* CRD_ALTSTACK_POOL slots of page + stack */
static size_t alt_stride;
static size_t page_size;
static uint8_t alt_used[CRD_ALTSTACK_POOL];    /* atomic */
static uint8_t alt_guarded[CRD_ALTSTACK_POOL]; /* owner only */
static pthread_key_t alt_key;
static int alt_key_ok;
/* 0: not looked at yet; 1: ours (alt_slot); -1: none of ours */
static __thread int alt_state __attribute__((tls_model("initial-exec")));
static __thread int alt_slot __attribute__((tls_model("initial-exec")));

/* ---- names ---- */

const char *crd_signal_name(int signo)
{
	switch (signo) {
	case SIGSEGV:
		return "SIGSEGV";
	case SIGBUS:
		return "SIGBUS";
	case SIGFPE:
		return "SIGFPE";
	case SIGILL:
		return "SIGILL";
	case SIGABRT:
		return "SIGABRT";
	default:
		return NULL;
	}
}

const char *crd_sigcode_name(int signo, int code)
{
	switch (code) {
	case SI_USER:
		return "SI_USER";
	case SI_KERNEL:
		return "SI_KERNEL";
	case SI_QUEUE:
		return "SI_QUEUE";
	case SI_TKILL:
		return "SI_TKILL";
	default:
		break;
	}
	switch (signo) {
	case SIGSEGV:
		switch (code) {
		case SEGV_MAPERR:
			return "SEGV_MAPERR";
		case SEGV_ACCERR:
			return "SEGV_ACCERR";
		default:
			return NULL;
		}
	case SIGBUS:
		switch (code) {
		case BUS_ADRALN:
			return "BUS_ADRALN";
		case BUS_ADRERR:
			return "BUS_ADRERR";
		case BUS_OBJERR:
			return "BUS_OBJERR";
		default:
			return NULL;
		}
	case SIGFPE:
		switch (code) {
		case FPE_INTDIV:
			return "FPE_INTDIV";
		case FPE_INTOVF:
			return "FPE_INTOVF";
		case FPE_FLTDIV:
			return "FPE_FLTDIV";
		case FPE_FLTOVF:
			return "FPE_FLTOVF";
		case FPE_FLTUND:
			return "FPE_FLTUND";
		case FPE_FLTRES:
			return "FPE_FLTRES";
		case FPE_FLTINV:
			return "FPE_FLTINV";
		case FPE_FLTSUB:
			return "FPE_FLTSUB";
		default:
			return NULL;
		}
	case SIGILL:
		switch (code) {
		case ILL_ILLOPC:
			return "ILL_ILLOPC";
		case ILL_ILLOPN:
			return "ILL_ILLOPN";
		case ILL_ILLADR:
			return "ILL_ILLADR";
		case ILL_ILLTRP:
			return "ILL_ILLTRP";
		case ILL_PRVOPC:
			return "ILL_PRVOPC";
		case ILL_PRVREG:
			return "ILL_PRVREG";
		case ILL_COPROC:
			return "ILL_COPROC";
		case ILL_BADSTK:
			return "ILL_BADSTK";
		default:
			return NULL;
		}
	default:
		return NULL;
	}
}

int crd_crash_active(void)
{
	return crash_on && reports_on;
}

/* ---- module table: built outside signal context ---- */

static void read_build_id(struct module *m, const struct dl_phdr_info *info, const ElfW(Phdr) * ph)
{
	const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *e = p + ph->p_memsz;

	while (p + sizeof(ElfW(Nhdr)) <= e) {
		const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
		const char *name = p + sizeof(*nh);
		const char *desc = name + ((nh->n_namesz + 3) & ~3u);
		if (desc + nh->n_descsz > e)
			return;
		if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(name, "GNU", 4)) {
			m->build_id_len =
			    nh->n_descsz < CRD_BUILD_ID_MAX ? (int)nh->n_descsz : CRD_BUILD_ID_MAX;
			memcpy(m->build_id, desc, (size_t)m->build_id_len);
			return;
		}
		p = desc + ((nh->n_descsz + 3) & ~3u);
	}
}

static int add_module(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct modtab *t = arg;
	struct module *m;
	const char *name = info->dlpi_name;

	if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs)) {
		t->adds = info->dlpi_adds;
		t->subs = info->dlpi_subs;
	}
	if (t->n == CRD_CRASH_MAX_MODULES)
		return 0;
	m = &t->m[t->n];
	memset(m, 0, sizeof(*m));
	/* The main program comes first, with an empty name. */
	if (!name || !*name)
		name = t->n == 0 ? exe_path : "";
	if (!*name)
		return 0;
	{
		size_t n = strlen(name);
		if (n > sizeof(m->path) - 1)
			n = sizeof(m->path) - 1;
		memcpy(m->path, name, n); /* m was zeroed: NUL-terminated */
	}
	m->base = info->dlpi_addr;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD && m->nseg < CRD_MODULE_SEGS) {
			m->lo[m->nseg] = info->dlpi_addr + ph->p_vaddr;
			m->hi[m->nseg] = m->lo[m->nseg] + ph->p_memsz;
			m->nseg++;
		} else if (ph->p_type == PT_NOTE && !m->build_id_len) {
			read_build_id(m, info, ph);
		}
	}
	t->n++;
	return 0;
}

static int counters(struct dl_phdr_info *info, size_t size, void *arg)
{
	unsigned long long *c = arg;

	if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs)) {
		c[0] = info->dlpi_adds;
		c[1] = info->dlpi_subs;
	}
	return 1; /* the first module tells */
}

static void build_modules(void)
{
	int cur = __atomic_load_n(&cur_tab, __ATOMIC_ACQUIRE);
	struct modtab *t = &tabs[cur == 0 ? 1 : 0];

	t->n = 0;
	t->adds = t->subs = 0;
	dl_iterate_phdr(add_module, t);
	__atomic_store_n(&cur_tab, cur == 0 ? 1 : 0, __ATOMIC_RELEASE);
}

void crd_crash_modules_refresh(void)
{
	unsigned long long c[2] = {0, 0};
	int cur = __atomic_load_n(&cur_tab, __ATOMIC_ACQUIRE);

	if (!crash_on || cur < 0)
		return;
	dl_iterate_phdr(counters, c);
	if (c[0] != tabs[cur].adds || c[1] != tabs[cur].subs)
		build_modules();
}

/* ---- signal-safe formatting into spool_buf ---- */

struct out {
	char *p;
	size_t n, cap;
};

static void o_mem(struct out *o, const char *s, size_t n)
{
	if (n > o->cap - o->n)
		n = o->cap - o->n;
	memcpy(o->p + o->n, s, n);
	o->n += n;
}

static void o_str(struct out *o, const char *s)
{
	o_mem(o, s, strlen(s));
}

/* A value on a line of its own: control characters would split it. */
static void o_text(struct out *o, const char *s, size_t max)
{
	for (size_t i = 0; s[i] && i < max && o->n < o->cap; i++)
		o->p[o->n++] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
}

static void o_dec(struct out *o, long long v)
{
	char b[24];
	int i = sizeof(b);
	unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;

	do
		b[--i] = (char)('0' + u % 10);
	while ((u /= 10) && i > 1);
	if (v < 0)
		b[--i] = '-';
	o_mem(o, b + i, sizeof(b) - (size_t)i);
}

static void o_hex(struct out *o, unsigned long long v)
{
	char b[18];
	int i = sizeof(b);

	do
		b[--i] = "0123456789abcdef"[v & 15];
	while ((v >>= 4) && i > 2);
	b[--i] = 'x';
	b[--i] = '0';
	o_mem(o, b + i, sizeof(b) - (size_t)i);
}

static void o_hexbytes(struct out *o, const uint8_t *p, int n)
{
	for (int i = 0; i < n && o->n + 2 <= o->cap; i++) {
		o->p[o->n++] = "0123456789abcdef"[p[i] >> 4];
		o->p[o->n++] = "0123456789abcdef"[p[i] & 15];
	}
}

/* ---- frames ---- */

/* /proc/self/maps for an address no table module holds (a library loaded
 * since the table was built). Fills maps_mods; returns the index or -1. */
static int maps_lookup(uintptr_t addr)
{
	int fd, found = -1;
	size_t have = 0;
	ssize_t r;

	for (int i = 0; i < nmaps_mods; i++)
		if (addr >= maps_mods[i].start && addr < maps_mods[i].end)
			return i;
	if (nmaps_mods == CRD_MAPS_MODULES)
		return -1;
	fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (found < 0 &&
	       (r = CRD_REAL(read)(fd, maps_buf + have, sizeof(maps_buf) - have)) > 0) {
		char *line = maps_buf, *end = maps_buf + have + r, *nl;
		while (found < 0 && (nl = memchr(line, '\n', (size_t)(end - line)))) {
			/* start-end perms offset dev inode path */
			uintptr_t lo = 0, hi = 0, off = 0;
			char *p = line;
			while (p < nl && *p != '-')
				lo = lo << 4 | (uintptr_t)(*p <= '9' ? *p - '0' : *p - 'a' + 10),
				p++;
			for (p++; p < nl && *p != ' '; p++)
				hi = hi << 4 | (uintptr_t)(*p <= '9' ? *p - '0' : *p - 'a' + 10);
			p += 6; /* " rwxp " */
			for (; p < nl && *p != ' '; p++)
				off = off << 4 | (uintptr_t)(*p <= '9' ? *p - '0' : *p - 'a' + 10);
			if (addr >= lo && addr < hi) {
				char *path = memchr(p, '/', (size_t)(nl - p));
				if (path) {
					struct maps_module *m = &maps_mods[nmaps_mods];
					size_t n = (size_t)(nl - path);
					if (n > sizeof(m->path) - 1)
						n = sizeof(m->path) - 1;
					memcpy(m->path, path, n);
					m->path[n] = 0;
					m->start = lo;
					m->end = hi;
					m->pgoff = off;
					found = nmaps_mods++;
				} else {
					found = -2; /* anonymous memory (JIT code) */
				}
			}
			line = nl + 1;
		}
		have = (size_t)(end - line);
		memmove(maps_buf, line, have);
		if (have == sizeof(maps_buf))
			have = 0; /* a line longer than the buffer: skip it */
	}
	CRD_REAL(close)(fd);
	return found < 0 ? -1 : found;
}

/* Module and offset of frame f (its pc and kind already set). */
static void resolve_frame(const struct modtab *t, struct frame *f)
{
	uintptr_t a = f->kind == 's' ? f->pc : f->pc - 1; /* a return address: the call */

	f->module = -1;
	f->offset = 0;
	for (int i = 0; t && i < t->n && f->module < 0; i++)
		for (int k = 0; k < t->m[i].nseg; k++)
			if (a >= t->m[i].lo[k] && a < t->m[i].hi[k]) {
				f->module = i;
				f->offset = a - t->m[i].base;
				break;
			}
	if (f->module < 0) {
		int k = maps_lookup(a);
		if (k >= 0) {
			f->module = CRD_MAPS_BASE + k;
			f->offset = a - maps_mods[k].start + maps_mods[k].pgoff;
		}
	}
}

static void add_frame(uintptr_t pc, char kind)
{
	frames[nframes].pc = pc;
	frames[nframes].kind = kind;
	frames[nframes].module = -1;
	nframes = nframes + 1;
}

static uintptr_t context_pc(const ucontext_t *uc)
{
#if defined(__x86_64__)
	return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
	return (uintptr_t)uc->uc_mcontext.pc;
#else
	(void)uc;
	return 0;
#endif
}

static void unwind(ucontext_t *uc)
{
	unw_cursor_t cur;
	unw_word_t ip;

	if (!uw.init_local2 || uw.init_local2(&cur, (unw_context_t *)uc, UNW_INIT_SIGNAL_FRAME))
		goto fallback;
	do {
		/* libunwind flags the frame a signal interrupted: its pc is
		 * exact, and so is the trampoline's before it (fixed up in
		 * exact_pcs()). Other pcs are return addresses. */
		int sigframe = uw.is_signal_frame && uw.is_signal_frame(&cur) > 0;
		if (uw.get_reg(&cur, UNW_REG_IP, &ip) < 0 || !ip)
			break;
		add_frame((uintptr_t)ip, (!nframes || sigframe) ? 's' : 'c');
	} while (nframes < CRD_CRASH_MAX_FRAMES && uw.step(&cur) > 0);
	if (nframes)
		return;
fallback:
	if (context_pc(uc))
		add_frame(context_pc(uc), 's');
}

/* The frame before an interrupted one is the signal trampoline: the
 * handler "returned" to its first instruction, an exact pc too. */
static void exact_pcs(void)
{
	for (int i = 0; i + 1 < nframes; i++)
		if (frames[i + 1].kind == 's')
			frames[i].kind = 's';
}

/* The request the crashed thread was serving, formatted now (it may
 * fault on corrupt memory: called inside a guarded phase). */
static void format_request(void)
{
	struct crd_rec *r = crd_ctx_current();
	struct out o = {req_line, 0, sizeof(req_line) - 1};
	char hex[33];
	size_t n;

	req_line[0] = 0;
	if (!r)
		return;
	o_str(&o, "request ");
	crd_hex(hex, r->span.trace_id, 16);
	o_str(&o, hex);
	o_str(&o, " ");
	crd_hex(hex, r->span.span_id, 8);
	o_str(&o, hex);
	o_str(&o, " ");
	for (n = 0; n < CRD_METHOD_MAX && r->span.req.method[n] > ' '; n++)
		;
	if (n)
		o_mem(&o, r->span.req.method, n);
	else
		o_str(&o, "-");
	o_str(&o, " ");
	/* The path only: a query may hold secrets, and so may the
	 * user:password@ of an absolute-form target (a proxy request), so
	 * its scheme://authority goes too. */
	{
		const char *t = r->span.req.target;
		if (t[0] != '/') {
			for (n = 0; n + 3 < CRD_TARGET_MAX && t[n] && t[n] != '/'; n++)
				;
			if (t[n] == '/' && n && t[n - 1] == ':' && t[n + 1] == '/') {
				t += n + 2;
				for (n = 0; t + n < r->span.req.target + CRD_TARGET_MAX && t[n] &&
					    t[n] != '/' && t[n] != '?';
				     n++)
					;
				t += n;
			}
		}
		for (n = 0; t + n < r->span.req.target + CRD_TARGET_MAX && t[n] && t[n] != '?'; n++)
			;
		if (n)
			o_text(&o, t, n);
		else
			o_str(&o, "/");
	}
	o_str(&o, "\n");
	req_line[o.n] = 0;
}

/* ---- the report ---- */

static size_t format_report(int sig, const siginfo_t *si, const struct modtab *t, long long now_ns,
			    int tid)
{
	struct out o = {spool_buf, 0, sizeof(spool_buf)};
	char thread[17] = "";
	const char *nm;
	int used[CRD_CRASH_MAX_FRAMES];
	int nused = 0;

	o_str(&o, CRD_SPOOL_MAGIC "\ntime_ns ");
	o_dec(&o, now_ns);
	o_str(&o, "\npid ");
	o_dec(&o, getpid());
	o_str(&o, "\ntid ");
	o_dec(&o, tid);
	o_str(&o, "\nsignal ");
	o_dec(&o, sig);
	o_str(&o, " ");
	o_str(&o, crd_signal_name(sig) ? crd_signal_name(sig) : "SIGNAL");
	o_str(&o, "\ncode ");
	o_dec(&o, si->si_code);
	o_str(&o, " ");
	nm = crd_sigcode_name(sig, si->si_code);
	o_str(&o, nm ? nm : "-");
	o_str(&o, "\naddr ");
	o_hex(&o, (unsigned long long)(uintptr_t)si->si_addr);
	prctl(PR_GET_NAME, thread, 0, 0, 0);
	o_str(&o, "\nthread ");
	o_text(&o, thread, sizeof(thread) - 1);
	o_str(&o, "\nexe ");
	o_text(&o, exe_path, sizeof(exe_path));
	o_str(&o, "\nservice ");
	o_text(&o, crd_cfg.service_name ? crd_cfg.service_name : "", 255);
	o_str(&o, "\nenvironment ");
	o_text(&o, crd_rb_cfg.environment, CRD_RB_ENV_MAX);
	if (crd_rb_cfg.code_version) {
		o_str(&o, "\ncode_version ");
		o_text(&o, crd_rb_cfg.code_version, CRD_RB_CODE_VERSION_MAX);
	}
	o_str(&o, "\nhost ");
	o_text(&o, host_name, sizeof(host_name));
	o_str(&o, "\n");
	o_str(&o, req_line);
	for (int i = 0; i < nframes; i++) {
		const struct frame *f = &frames[i];
		o_str(&o, "frame ");
		o_hex(&o, f->pc);
		o_str(&o, " ");
		o_dec(&o, f->module);
		o_str(&o, " ");
		o_hex(&o, f->offset);
		o_str(&o, f->kind == 's' ? " s\n" : " c\n");
		if (f->module >= 0) {
			int seen = 0;
			for (int k = 0; k < nused && !seen; k++)
				seen = used[k] == f->module;
			if (!seen)
				used[nused++] = f->module;
		}
	}
	for (int k = 0; k < nused; k++) {
		int idx = used[k];
		o_str(&o, "module ");
		o_dec(&o, idx);
		o_str(&o, " ");
		if (idx >= CRD_MAPS_BASE) {
			o_str(&o, "- f ");
			o_text(&o, maps_mods[idx - CRD_MAPS_BASE].path, CRD_MODULE_PATH_MAX);
		} else {
			const struct module *m = &t->m[idx];
			if (m->build_id_len)
				o_hexbytes(&o, m->build_id, m->build_id_len);
			else
				o_str(&o, "-");
			o_str(&o, " v ");
			o_text(&o, m->path, CRD_MODULE_PATH_MAX);
		}
		o_str(&o, "\n");
	}
	o_str(&o, "end\n");
	return o.n;
}

static void say_at(int level, const char *a, const char *b, const char *c)
{
	struct out o = {maps_buf, 0, sizeof(maps_buf)};

	if (crd_log_level < level)
		return;
	o_str(&o, "cruddur: ");
	o_str(&o, a);
	o_str(&o, b);
	o_str(&o, c);
	o_str(&o, "\n");
	(void)!CRD_REAL(write)(2, maps_buf, o.n);
}

static void say(const char *a, const char *b, const char *c)
{
	say_at(CRD_LOG_ERROR, a, b, c);
}

/* The spool directory, created 0700 (whatever the umask) when missing,
 * opened without following symlinks and used only if it is ours and
 * nobody else can write it. A descriptor, or -1 (after one message). */
static int open_spool(char *dir, size_t cap)
{
	struct stat st;
	int dfd, made;

	if (crd_spool_dir(dir, cap) < 0)
		return -1;
	made = !mkdir(dir, 0700);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		say("crash data not written: cannot open ", dir, "");
		return -1;
	}
	/* The umask may have taken bits from a directory we just made. */
	if (made)
		fchmod(dfd, 0700);
	if (fstat(dfd, &st) || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 022)) {
		say("crash data not written: ", dir,
		    " is not a directory of ours that only we can write");
		CRD_REAL(close)(dfd);
		return -1;
	}
	return dfd;
}

/* Write the report: a 0600 temporary file in a directory we own (no
 * symlinks followed), renamed into place so readers never see half of
 * it. */
static void write_report(int sig, size_t len, long long now_ns, int tid)
{
	char dir[CRD_SPOOL_DIR_MAX + 32], name[96], tmp[sizeof(name) + 8];
	struct out o = {name, 0, sizeof(name) - 1};
	int dfd, fd;
	size_t off = 0;

	if ((dfd = open_spool(dir, sizeof(dir))) < 0)
		return;
	o_str(&o, CRD_SPOOL_PREFIX);
	o_dec(&o, now_ns);
	o_str(&o, "-");
	o_dec(&o, getpid());
	o_str(&o, "-");
	o_dec(&o, tid);
	o_str(&o, CRD_SPOOL_SUFFIX);
	name[o.n] = 0;
	memcpy(tmp, CRD_SPOOL_TMP, sizeof(CRD_SPOOL_TMP) - 1);
	memcpy(tmp + sizeof(CRD_SPOOL_TMP) - 1, name, o.n + 1);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		say("crash report not written in ", dir, "");
		CRD_REAL(close)(dfd);
		return;
	}
	/* 0600 whatever the umask: the creation mode is only an upper bound. */
	fchmod(fd, 0600);
	while (off < len) {
		ssize_t w = CRD_REAL(write)(fd, spool_buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	CRD_REAL(close)(fd);
	if (off == len && !renameat(dfd, tmp, dfd, name)) {
		char path[sizeof(dir) + sizeof(name) + 2];
		struct out p = {path, 0, sizeof(path) - 1};
		o_str(&p, dir);
		o_str(&p, "/");
		o_str(&p, name);
		path[p.n] = 0;
		say(crd_signal_name(sig) ? crd_signal_name(sig) : "crash", ": crash report ", path);
	} else {
		unlinkat(dfd, tmp, 0);
	}
	CRD_REAL(close)(dfd);
}

static void set_mask(int how, int sig)
{
	sigset_t s;

	sigemptyset(&s);
	for (size_t i = 0; i < NCRASH_SIGS; i++)
		sigaddset(&s, crash_sigs[i]);
	sigaddset(&s, sig);
	sigprocmask(how, &s, NULL);
}

/* The finished spans still queued (and the batch the exporter holds)
 * into the spool, so that the next start sends them (spanspool.h). A
 * fault on corrupt records comes back here: the temporary file is left
 * (never claimed: its name starts with a dot). */
static void spool_spans(int sig, int tid)
{
	char dir[CRD_SPOOL_DIR_MAX + 32];
	struct timespec ts;
	sigset_t entry;
	volatile int n = 0;
	int dfd;

	if (!crd_cfg.crash_spans || (dfd = open_spool(dir, sizeof(dir))) < 0)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	sigprocmask(SIG_SETMASK, NULL, &entry);
	if (!sigsetjmp(phase_jmp, 0)) {
		phase = 4;
		set_mask(SIG_UNBLOCK, sig);
		n = crd_spanspool_write(dfd, (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec, tid);
	}
	phase = 0;
	sigprocmask(SIG_SETMASK, &entry, NULL);
	CRD_REAL(close)(dfd);
	if (n > 0)
		say_at(CRD_LOG_INFO, "queued spans saved for the next start: ", dir, "");
}

static void capture(int sig, siginfo_t *si, ucontext_t *uc, int tid)
{
	int cur = __atomic_load_n(&cur_tab, __ATOMIC_ACQUIRE);
	const struct modtab *t = cur >= 0 ? &tabs[cur] : NULL;
	struct timespec ts;
	sigset_t entry;
	size_t len;

	clock_gettime(CLOCK_REALTIME, &ts);
	sigprocmask(SIG_SETMASK, NULL, &entry);
	nframes = 0;
	req_line[0] = 0;
	/* A fault while unwinding (a corrupt stack) or reading the request
	 * comes back here with what was gathered so far. */
	if (!sigsetjmp(phase_jmp, 0)) {
		phase = 1;
		set_mask(SIG_UNBLOCK, sig);
		unwind(uc);
	}
	if (!sigsetjmp(phase_jmp, 0)) {
		phase = 3;
		set_mask(SIG_UNBLOCK, sig);
		exact_pcs();
		for (int i = 0; i < nframes; i++)
			resolve_frame(t, &frames[i]);
	}
	if (!sigsetjmp(phase_jmp, 0)) {
		phase = 2;
		set_mask(SIG_UNBLOCK, sig);
		format_request();
	}
	phase = 0;
	sigprocmask(SIG_SETMASK, &entry, NULL);
	len = format_report(sig, si, t, (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec, tid);
	write_report(sig, len, (long long)ts.tv_sec * 1000000000ll + ts.tv_nsec, tid);
}

/* ---- the handlers ---- */

/* Is this the kernel reporting a faulting instruction (which runs again,
 * and faults again, when the handler returns)? */
static int sync_fault(int sig, const siginfo_t *si)
{
	return sig != SIGABRT && si->si_code > 0;
}

/* Default action, and the signal again: the process ends as it would
 * have without us (same signal, core dump, exit status). */
static void die(int sig, const siginfo_t *si)
{
	struct sigaction dfl;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	if (sync_fault(sig, si))
		return; /* returning re-executes the fault: the kernel kills */
	/* Sent by abort()/kill(): pending while we run, delivered (with the
	 * default action) as this handler returns. */
	tgkill(getpid(), gettid(), sig);
	/* PID 1 ignores default-action signals sent to itself. */
	if (getpid() == 1)
		CRD_REAL(_exit)(128 + sig); /* not our _exit hook: no flush here */
}

static void chain(int sig, siginfo_t *si, void *uc)
{
	const struct sigaction *p = &prev_act[sig];
	sigset_t old;

	if (p->sa_flags & SA_SIGINFO) {
		if (!p->sa_sigaction)
			return;
	} else if (p->sa_handler == SIG_DFL || p->sa_handler == SIG_IGN) {
		return;
	}
	pthread_sigmask(SIG_BLOCK, &p->sa_mask, &old);
	if (p->sa_flags & SA_SIGINFO)
		p->sa_sigaction(sig, si, uc);
	else
		p->sa_handler(sig);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* The watchdog: a crash handler still running (a hang in a chained
 * handler, the loader lock) ends the process with the crash signal, or
 * _exit when that does not work (PID 1). */
static void on_watchdog(int s)
{
	int sig = crash_signo ? crash_signo : SIGABRT;
	struct sigaction dfl;
	sigset_t set;

	(void)s;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(sig, &dfl, NULL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	tgkill(getpid(), gettid(), sig);
	CRD_REAL(_exit)(128 + sig); /* not our _exit hook: no flush here */
}

static void arm_watchdog(void)
{
	struct sigaction sa;
	sigset_t set;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_watchdog;
	sa.sa_flags = SA_ONSTACK;
	sigfillset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGALRM);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	alarm(CRD_CRASH_WATCHDOG_S);
}

static void on_crash(int sig, siginfo_t *si, void *ucv)
{
	int saved_errno = errno, tid = gettid(), expected = 0;

	if (__atomic_compare_exchange_n(&owner_tid, &expected, tid, 0, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE)) {
		crash_signo = sig;
		arm_watchdog();
		if (reports_on)
			capture(sig, si, ucv, tid);
		spool_spans(sig, tid);
		report_done = 1;
		chain(sig, si, ucv);
		die(sig, si);
	} else if (expected == tid) {
		/* A fault in our own capture: back to it. Elsewhere (in the
		 * chained handler, or after): the default action. */
		if (phase)
			siglongjmp(phase_jmp, 1);
		die(sig, si);
	} else {
		/* Another thread is reporting its crash: wait for it (the
		 * process normally dies meanwhile), then die by ours. */
		struct timespec ts = {0, CRD_LOSER_POLL_MS * 1000000L};
		for (int i = 0; !report_done && i < CRD_CRASH_WATCHDOG_S * 1000 / CRD_LOSER_POLL_MS;
		     i++)
			nanosleep(&ts, NULL);
		chain(sig, si, ucv);
		die(sig, si);
	}
	errno = saved_errno;
}

/* ---- alternate stacks ---- */

static void alt_release(void *p)
{
	int i = (int)(uintptr_t)p - 1;
	stack_t ss;

	memset(&ss, 0, sizeof(ss));
	ss.ss_flags = SS_DISABLE;
	/* Fails only while running on it: then the slot stays taken. */
	if (i >= 0 && i < CRD_ALTSTACK_POOL && !sigaltstack(&ss, NULL))
		__atomic_store_n(&alt_used[i], 0, __ATOMIC_RELEASE);
	alt_state = -1;
}

void crd_crash_thread_start(void)
{
	stack_t cur, ss;
	int i;

	if (!crash_on || alt_state || !alt_pool)
		return;
	alt_state = -1;
	/* The thread's own alternate stack (Rust, Go, the app) stays. */
	if (sigaltstack(NULL, &cur) || !(cur.ss_flags & SS_DISABLE))
		return;
	for (i = 0; i < CRD_ALTSTACK_POOL; i++) {
		uint8_t expected = 0;
		if (!__atomic_load_n(&alt_used[i], __ATOMIC_RELAXED) &&
		    __atomic_compare_exchange_n(&alt_used[i], &expected, 1, 0, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED))
			break;
	}
	if (i == CRD_ALTSTACK_POOL)
		return; /* more threads than stacks: this one uses its own stack */
	if (!alt_guarded[i]) {
		/* A guard page below each stack, made once per slot. */
		mprotect(alt_pool + (size_t)i * alt_stride, page_size, PROT_NONE);
		alt_guarded[i] = 1;
	}
	memset(&ss, 0, sizeof(ss));
	ss.ss_sp = alt_pool + (size_t)i * alt_stride + page_size;
	ss.ss_size = CRD_ALTSTACK_SIZE;
	if (sigaltstack(&ss, NULL)) {
		__atomic_store_n(&alt_used[i], 0, __ATOMIC_RELEASE);
		return;
	}
	alt_state = 1;
	alt_slot = i;
	if (alt_key_ok)
		pthread_setspecific(alt_key, (void *)(uintptr_t)(i + 1));
}

static void atfork_child(void)
{
	/* Only the forking thread exists here: every other slot is free. */
	for (int i = 0; i < CRD_ALTSTACK_POOL; i++)
		if (!(alt_state == 1 && alt_slot == i))
			alt_used[i] = 0;
}

static void main_altstack(void)
{
	stack_t cur, ss;
	char *m;

	if (sigaltstack(NULL, &cur) || !(cur.ss_flags & SS_DISABLE)) {
		alt_state = -1;
		return;
	}
	m = mmap(NULL, CRD_ALTSTACK_SIZE + page_size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return;
	mprotect(m, page_size, PROT_NONE);
	memset(&ss, 0, sizeof(ss));
	ss.ss_sp = m + page_size;
	ss.ss_size = CRD_ALTSTACK_SIZE;
	if (sigaltstack(&ss, NULL))
		munmap(m, CRD_ALTSTACK_SIZE + page_size);
	alt_state = -1; /* the main thread's is not from the pool */
}

/* ---- init ---- */

static void load_libunwind(void)
{
	void *h = dlopen(CRD_LIBUNWIND, RTLD_NOW | RTLD_LOCAL);
	ucontext_t uc;
	unw_cursor_t cur;

	if (!h) {
		crd_info("crash reports without a stack trace: cannot load %s", CRD_LIBUNWIND);
		return;
	}
	*(void **)&uw.init_local2 = dlsym(h, CRD_STR(unw_init_local2));
	*(void **)&uw.step = dlsym(h, CRD_STR(unw_step));
	*(void **)&uw.get_reg = dlsym(h, CRD_STR(unw_get_reg));
	*(void **)&uw.is_signal_frame = dlsym(h, CRD_STR(unw_is_signal_frame));
	if (!uw.init_local2 || !uw.step || !uw.get_reg) {
		crd_info("crash reports without a stack trace: %s lacks %s", CRD_LIBUNWIND,
			 CRD_STR(unw_init_local2));
		memset(&uw, 0, sizeof(uw));
		return;
	}
	/* One unwind now, so that libunwind's one-time set-up never runs
	 * in a signal handler. */
	if (!getcontext(&uc) && !uw.init_local2(&cur, &uc, 0))
		uw.step(&cur);
}

void crd_crash_init(void)
{
	struct sigaction sa;
	ssize_t n;

	/* Handlers for Rollbar crash reports, and for saving the spans
	 * still queued (CRUDDUR_CRASH_SPANS, on by default). */
	reports_on = crd_rb_cfg.enabled && crd_rb_cfg.crash_enabled;
	if ((!reports_on && !crd_cfg.crash_spans) || crash_on)
		return;
	page_size = (size_t)sysconf(_SC_PAGESIZE);
	if (reports_on) {
		n = readlink("/proc/self/exe", exe_path, sizeof(exe_path) - 1);
		exe_path[n > 0 ? n : 0] = 0;
		if (gethostname(host_name, sizeof(host_name) - 1))
			host_name[0] = 0;
		load_libunwind();
		build_modules();
	}

	alt_stride = CRD_ALTSTACK_SIZE + page_size;
	alt_pool = mmap(NULL, alt_stride * CRD_ALTSTACK_POOL, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (alt_pool == MAP_FAILED)
		alt_pool = NULL;
	alt_key_ok = !pthread_key_create(&alt_key, alt_release);
	main_altstack();
	pthread_atfork(NULL, NULL, atfork_child);

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_crash;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < NCRASH_SIGS; i++) {
		int sig = crash_sigs[i];
		struct sigaction old;
		/* An ignored signal stays ignored, as the app asked. */
		if (sigaction(sig, NULL, &old) ||
		    (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_IGN))
			continue;
		sigaction(sig, &sa, &prev_act[sig]);
	}
	crash_on = 1;
	if (reports_on)
		crd_debug("crash reports: handlers installed, %d modules, %s, spool %s%s",
			  tabs[__atomic_load_n(&cur_tab, __ATOMIC_ACQUIRE)].n,
			  uw.init_local2 ? "libunwind" : "no unwinder", crd_rb_cfg.spool_dir,
			  crd_rb_cfg.spool_default ? "<uid>" : "");
	else
		crd_debug("crash handlers installed: queued spans are saved in %s%s at a crash",
			  crd_rb_cfg.spool_dir, crd_rb_cfg.spool_default ? "<uid>" : "");
}
