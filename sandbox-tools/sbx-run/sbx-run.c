/*
 * sbx-run: the helper sandboxd installs in each sandbox to run background and
 * interactive commands (issue 12). One directory per command holds all of its
 * state (meta.json, output segments, stdin FIFO, exit.json), so any replica of
 * sandboxd can list, attach to, feed and signal it, also after a restart.
 * See README.md beside this file for the layout, wire format and exit codes.
 * C11 + Linux + libc only; built static (build.sh).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define SBX_RUN_VERSION 3
#define FRAME_MAX 262144            /* largest data frame payload */
#define DEFAULT_CAP (64ULL << 20)   /* bytes held per stream */
#define MIN_CAP 65536ULL
#define IDLE_AFTER_EXIT_MS 100      /* output drain after the command exits ... */
#define MAX_DRAIN_AFTER_EXIT_MS 2000 /* ... while descendants still hold its output */
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

enum { RC_OK = 0, RC_ERR = 1, RC_USAGE = 2, RC_PRECOND = 3, RC_NOTFOUND = 4, RC_EXISTS = 5, RC_PERM = 7 };
typedef unsigned long long u64;

/* ---------- errors, strings ---------- */

static void die(int rc, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void die(int rc, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  for (char *p = msg; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
  dprintf(2, "sbx-run: %s\n", msg);
  exit(rc);
}

typedef struct { char *p; size_t len, cap; } sb_t;

static void sb_grow(sb_t *b, size_t n) {
  if (b->len + n + 1 <= b->cap) return;
  size_t c = b->cap ? b->cap : 256;
  while (c < b->len + n + 1) c *= 2;
  char *q = realloc(b->p, c);
  if (!q) die(RC_ERR, "out of memory");
  b->p = q;
  b->cap = c;
}
static void sb_add(sb_t *b, const char *s, size_t n) {
  sb_grow(b, n);
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}
static void sb_str(sb_t *b, const char *s) { sb_add(b, s, strlen(s)); }
static void sb_printf(sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char probe[1];
  int n = vsnprintf(probe, sizeof probe, fmt, ap);
  va_end(ap);
  sb_grow(b, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}
/* Appends s as a JSON string (bytes >= 0x80 pass through). */
static void sb_json(sb_t *b, const char *s) {
  sb_add(b, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') { char e[2] = {'\\', (char)c}; sb_add(b, e, 2); }
    else if (c == '\n') sb_str(b, "\\n");
    else if (c == '\t') sb_str(b, "\\t");
    else if (c == '\r') sb_str(b, "\\r");
    else if (c < 0x20 || c == 0x7f) sb_printf(b, "\\u%04x", c);
    else sb_add(b, (const char *)&c, 1);
  }
  sb_add(b, "\"", 1);
}

static long long now_ms(int clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------- files ---------- */

static int write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads a whole file into b (replacing its content); -1 with errno on failure. */
static int read_file(const char *path, sb_t *b) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  b->len = 0;
  sb_grow(b, 4096);
  for (;;) {
    sb_grow(b, 4096);
    ssize_t r = read(fd, b->p + b->len, b->cap - b->len - 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) { int e = errno; close(fd); errno = e; return -1; }
    if (r == 0) break;
    b->len += (size_t)r;
  }
  b->p[b->len] = 0;
  close(fd);
  return 0;
}

/* Reads at most cap-1 bytes, NUL-terminated; returns the length or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, cap - 1);
  close(fd);
  if (n < 0) return -1;
  buf[n] = 0;
  return n;
}

/* Write to a temp file beside path, then rename: readers see all or nothing. */
static int write_atomic(const char *path, const char *data, size_t len) {
  char tmp[PATH_MAX + 32];
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  if (write_all(fd, data, len) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
    int e = errno;
    unlink(tmp);
    errno = e;
    return -1;
  }
  return 0;
}

static void path_join(char *out, const char *a, const char *b) {
  if (snprintf(out, PATH_MAX, "%s/%s", a, b) >= PATH_MAX) die(RC_USAGE, "path too long: %s/%s", a, b);
}

static bool exists(const char *dir, const char *name) {
  char p[PATH_MAX];
  path_join(p, dir, name);
  return access(p, F_OK) == 0;
}

static void rm_rf(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      if (unlinkat(dirfd(d), e->d_name, 0) < 0 && errno == EISDIR) unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
    }
    closedir(d);
  }
  rmdir(dir);
}

static void mkdir_p(const char *path) {
  char p[PATH_MAX];
  if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) die(RC_USAGE, "path too long: %s", path);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = 0;
    if (mkdir(p, 0700) < 0 && errno != EEXIST) die(RC_ERR, "mkdir %s: %s", p, strerror(errno));
    *s = '/';
  }
  if (mkdir(p, 0700) < 0 && errno != EEXIST) die(RC_ERR, "mkdir %s: %s", p, strerror(errno));
}

/* ---------- minimal JSON reading (of the files this program writes) ---------- */

static const char *js_ws(const char *p, const char *e) {
  while (p < e && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')) p++;
  return p;
}
/* Returns the end of the value starting at p, or NULL. */
static const char *js_skip(const char *p, const char *e, int depth) {
  p = js_ws(p, e);
  if (p >= e || depth > 16) return NULL;
  if (*p == '"') {
    for (p++; p < e; p++) {
      if (*p == '\\') p++;
      else if (*p == '"') return p + 1;
    }
    return NULL;
  }
  if (*p == '{' || *p == '[') {
    char close = *p == '{' ? '}' : ']';
    p = js_ws(p + 1, e);
    if (p < e && *p == close) return p + 1;
    for (;;) {
      if (close == '}') {
        if (!(p = js_skip(p, e, depth + 1))) return NULL;
        p = js_ws(p, e);
        if (p >= e || *p != ':') return NULL;
        p++;
      }
      if (!(p = js_skip(p, e, depth + 1))) return NULL;
      p = js_ws(p, e);
      if (p < e && *p == ',') { p++; continue; }
      return p < e && *p == close ? p + 1 : NULL;
    }
  }
  const char *s = p;
  while (p < e && (isalnum((unsigned char)*p) || *p == '-' || *p == '+' || *p == '.')) p++;
  return p > s ? p : NULL;
}
/* Finds key in the object at [p, e): the value's span in *vs, *ve. */
static bool js_get(const char *p, const char *e, const char *key, const char **vs, const char **ve) {
  p = js_ws(p, e);
  if (p >= e || *p != '{') return false;
  size_t kl = strlen(key);
  for (p++;;) {
    p = js_ws(p, e);
    if (p >= e || *p != '"') return false;
    const char *ks = p + 1, *kend = js_skip(p, e, 0);
    if (!kend) return false;
    bool match = (size_t)(kend - 1 - ks) == kl && memcmp(ks, key, kl) == 0;
    p = js_ws(kend, e);
    if (p >= e || *p != ':') return false;
    const char *v = js_ws(p + 1, e), *vend = js_skip(v, e, 0);
    if (!vend) return false;
    if (match) { *vs = v; *ve = vend; return true; }
    p = js_ws(vend, e);
    if (p >= e || *p != ',') return false;
    p++;
  }
}
static bool js_num(const char *obj, const char *key, long long *out) {
  const char *vs, *ve;
  if (!js_get(obj, obj + strlen(obj), key, &vs, &ve) || ve - vs > 24) return false;
  char tmp[32];
  memcpy(tmp, vs, (size_t)(ve - vs));
  tmp[ve - vs] = 0;
  char *end;
  errno = 0;
  *out = strtoll(tmp, &end, 10);
  return errno == 0 && *end == 0 && end != tmp;
}
static void utf8_put(char **o, unsigned cp) {
  if (cp < 0x80) *(*o)++ = (char)cp;
  else if (cp < 0x800) { *(*o)++ = (char)(0xc0 | cp >> 6); *(*o)++ = (char)(0x80 | (cp & 0x3f)); }
  else if (cp < 0x10000) { *(*o)++ = (char)(0xe0 | cp >> 12); *(*o)++ = (char)(0x80 | ((cp >> 6) & 0x3f)); *(*o)++ = (char)(0x80 | (cp & 0x3f)); }
  else { *(*o)++ = (char)(0xf0 | cp >> 18); *(*o)++ = (char)(0x80 | ((cp >> 12) & 0x3f)); *(*o)++ = (char)(0x80 | ((cp >> 6) & 0x3f)); *(*o)++ = (char)(0x80 | (cp & 0x3f)); }
}
/* Decodes the JSON string value of key into out (cap bytes); false if absent, null or too long. */
static bool js_str(const char *obj, const char *key, char *out, size_t cap) {
  const char *p, *e;
  if (!js_get(obj, obj + strlen(obj), key, &p, &e) || *p != '"' || (size_t)(e - p) > cap) return false;
  char *o = out;
  for (p++; p < e - 1; p++) {
    if (*p != '\\') { *o++ = *p; continue; }
    p++;
    switch (*p) {
      case 'n': *o++ = '\n'; break;
      case 't': *o++ = '\t'; break;
      case 'r': *o++ = '\r'; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'u': {
        char h[5] = {0};
        if (e - p < 5) return false;
        memcpy(h, p + 1, 4);
        unsigned cp = (unsigned)strtoul(h, NULL, 16);
        p += 4;
        if (cp >= 0xd800 && cp < 0xdc00 && e - p > 6 && p[1] == '\\' && p[2] == 'u') {
          memcpy(h, p + 3, 4);
          cp = 0x10000 + ((cp - 0xd800) << 10) + ((unsigned)strtoul(h, NULL, 16) - 0xdc00);
          p += 6;
        }
        utf8_put(&o, cp);
        break;
      }
      default: *o++ = *p;
    }
  }
  *o = 0;
  return true;
}

/* ---------- command metadata and state ---------- */

struct meta {
  sb_t raw;
  char tag[1100];
  bool has_tag, pty, keep_stdin;
  char pty_path[128];
  long long started_at, sup_pid, sup_start, pid;
  const char *argv_s, *argv_e;
};

static bool valid_id(const char *id) {
  size_t n = strlen(id);
  if (n < 1 || n > 64) return false;
  for (const char *p = id; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-') return false;
  return true;
}

/* The command's directory; exits 2 on a bad id. */
static void cmd_dir(char *out, const char *dir, const char *id) {
  if (!dir || !id) die(RC_USAGE, "--dir and --id are required");
  if (!valid_id(id)) die(RC_USAGE, "invalid id %s: want [A-Za-z0-9_-]{1,64}", id);
  path_join(out, dir, id);
}

static int meta_load(const char *cdir, struct meta *m) {
  char p[PATH_MAX];
  path_join(p, cdir, "meta.json");
  memset(m, 0, sizeof *m);
  if (read_file(p, &m->raw) < 0) return -1;
  const char *s = m->raw.p, *e = s + m->raw.len, *vs, *ve;
  if (!js_num(s, "supervisorPid", &m->sup_pid) || !js_num(s, "pid", &m->pid) || !js_num(s, "startedAt", &m->started_at) ||
      !js_get(s, e, "argv", &m->argv_s, &m->argv_e))
    return -2;
  js_num(s, "supervisorStart", &m->sup_start);
  m->has_tag = js_str(s, "tag", m->tag, sizeof m->tag);
  m->pty = js_str(s, "ptyPath", m->pty_path, sizeof m->pty_path);
  m->keep_stdin = js_get(s, e, "keepStdin", &vs, &ve) && *vs == 't';
  return 0;
}

static void meta_must(const char *cdir, const char *id, struct meta *m) {
  int r = meta_load(cdir, m);
  if (r == -1) die(RC_NOTFOUND, "no command %s", id);
  if (r == -2) die(RC_ERR, "command %s: unreadable meta.json", id);
}

/* /proc/<pid>/stat: state letter and start time (clock ticks after boot). */
static bool proc_stat(long long pid, char *state, u64 *start) {
  char path[64], buf[1024];
  if (pid > 0) snprintf(path, sizeof path, "/proc/%lld/stat", pid);
  else snprintf(path, sizeof path, "/proc/self/stat");
  if (read_small(path, buf, sizeof buf) < 0) return false;
  char *p = strrchr(buf, ')');
  if (!p || !p[1] || !p[2]) return false;
  *state = p[2];
  int field = 3;
  for (char *q = p + 2; *q; q++)
    if (*q == ' ' && ++field == 22) { *start = strtoull(q + 1, NULL, 10); return true; }
  return false;
}

/* Is the supervisor alive and still this program (not a recycled pid)? */
static bool sup_alive(const struct meta *m) {
  char state;
  u64 start;
  if (m->sup_pid <= 0) return false;
  if (!proc_stat(m->sup_pid, &state, &start)) return kill((pid_t)m->sup_pid, 0) == 0 && access("/proc/self/stat", F_OK) != 0;
  if (state == 'Z' || state == 'X' || (m->sup_start && start != (u64)m->sup_start)) return false;
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%lld/cmdline", m->sup_pid);
  ssize_t n = read_small(path, buf, sizeof buf);
  if (n <= 0) return false;
  const char *base = strrchr(buf, '/');
  base = base ? base + 1 : buf;
  size_t l0 = strlen(buf);
  return strncmp(base, "sbx-run", 7) == 0 && (ssize_t)l0 + 1 < n && strcmp(buf + l0 + 1, "start") == 0;
}

enum { S_RUNNING, S_EXITED, S_LOST };
static const char *LOST_JSON = "{\"lost\":true}";

/* The command's state; for exited ones exitjs holds exit.json (or the lost marker). */
static int cmd_state(const char *cdir, const struct meta *m, sb_t *exitjs) {
  char p[PATH_MAX];
  path_join(p, cdir, "exit.json");
  for (int pass = 0; pass < 2; pass++) {
    if (read_file(p, exitjs) == 0) {
      while (exitjs->len && isspace((unsigned char)exitjs->p[exitjs->len - 1])) exitjs->p[--exitjs->len] = 0;
      return S_EXITED;
    }
    if (pass == 0 && sup_alive(m)) return S_RUNNING;
  }
  exitjs->len = 0;
  sb_str(exitjs, LOST_JSON);
  return S_LOST;
}

/* ---------- signals ---------- */

static const struct { const char *name; int sig; bool sendable; } SIGS[] = {
    {"HUP", SIGHUP, 1},     {"INT", SIGINT, 1},       {"QUIT", SIGQUIT, 1},   {"ILL", SIGILL, 0},     {"TRAP", SIGTRAP, 0},
    {"ABRT", SIGABRT, 0},   {"BUS", SIGBUS, 0},       {"FPE", SIGFPE, 0},     {"KILL", SIGKILL, 1},   {"USR1", SIGUSR1, 1},
    {"SEGV", SIGSEGV, 0},   {"USR2", SIGUSR2, 1},     {"PIPE", SIGPIPE, 1},   {"ALRM", SIGALRM, 1},   {"TERM", SIGTERM, 1},
    {"STKFLT", SIGSTKFLT, 0}, {"CHLD", SIGCHLD, 0},   {"CONT", SIGCONT, 1},   {"STOP", SIGSTOP, 1},   {"TSTP", SIGTSTP, 1},
    {"TTIN", SIGTTIN, 0},   {"TTOU", SIGTTOU, 0},     {"URG", SIGURG, 0},     {"XCPU", SIGXCPU, 0},   {"XFSZ", SIGXFSZ, 0},
    {"VTALRM", SIGVTALRM, 0}, {"PROF", SIGPROF, 0},   {"WINCH", SIGWINCH, 1}, {"IO", SIGIO, 0},       {"PWR", SIGPWR, 0},
    {"SYS", SIGSYS, 0},
};
#define NSIGS (sizeof SIGS / sizeof SIGS[0])

static void sig_name(int sig, char *out, size_t cap) {
  for (size_t i = 0; i < NSIGS; i++)
    if (SIGS[i].sig == sig) { snprintf(out, cap, "SIG%s", SIGS[i].name); return; }
  snprintf(out, cap, "SIG%d", sig);
}

static int sig_parse(const char *s) {
  if (!strncasecmp(s, "SIG", 3)) s += 3;
  for (size_t i = 0; i < NSIGS; i++)
    if (SIGS[i].sendable && !strcasecmp(s, SIGS[i].name)) return SIGS[i].sig;
  return -1;
}

/* ---------- output segments ---------- */

/* Sorted start offsets of a stream's segment files ("stdout.<16 hex>"). */
typedef struct { u64 *v; int n, cap; } offs_t;

static void offs_push(offs_t *o, u64 x) {
  if (o->n == o->cap) {
    o->cap = o->cap ? o->cap * 2 : 16;
    o->v = realloc(o->v, sizeof(u64) * (size_t)o->cap);
    if (!o->v) die(RC_ERR, "out of memory");
  }
  o->v[o->n++] = x;
}
static int u64cmp(const void *a, const void *b) {
  u64 x = *(const u64 *)a, y = *(const u64 *)b;
  return x < y ? -1 : x > y;
}
static bool seg_name_parse(const char *name, const char *stream, u64 *start) {
  size_t l = strlen(stream);
  if (strncmp(name, stream, l) || name[l] != '.' || strlen(name + l + 1) != 16) return false;
  for (const char *p = name + l + 1; *p; p++)
    if (!isxdigit((unsigned char)*p)) return false;
  *start = strtoull(name + l + 1, NULL, 16);
  return true;
}
static void seg_scan(const char *cdir, const char *stream, offs_t *o) {
  o->n = 0;
  DIR *d = opendir(cdir);
  if (!d) return;
  struct dirent *e;
  u64 s;
  while ((e = readdir(d)) != NULL)
    if (seg_name_parse(e->d_name, stream, &s)) offs_push(o, s);
  closedir(d);
  if (o->n > 1) qsort(o->v, (size_t)o->n, sizeof(u64), u64cmp);
}
static void seg_path(char *out, const char *cdir, const char *stream, u64 start) {
  if (snprintf(out, PATH_MAX, "%s/%s.%016llx", cdir, stream, start) >= PATH_MAX) die(RC_USAGE, "path too long");
}
/* Earliest held offset and end of a stream (0, 0 when it has no segments). */
static void seg_range(const char *cdir, const char *stream, offs_t *o, u64 *earliest, u64 *end) {
  seg_scan(cdir, stream, o);
  *earliest = *end = 0;
  if (o->n == 0) return;
  *earliest = o->v[0];
  char p[PATH_MAX];
  struct stat st;
  seg_path(p, cdir, stream, o->v[o->n - 1]);
  *end = o->v[o->n - 1] + (stat(p, &st) == 0 ? (u64)st.st_size : 0);
}

/* ---------- argument parsing ---------- */

static u64 parse_u64(const char *opt, const char *s, u64 min, u64 max) {
  char *end;
  errno = 0;
  if (!s || !isdigit((unsigned char)*s)) die(RC_USAGE, "%s: want a number", opt);
  u64 v = strtoull(s, &end, 10);
  if (errno || *end || v < min || v > max) die(RC_USAGE, "%s: want a number in [%llu, %llu], got %s", opt, min, max, s);
  return v;
}

struct opts {
  const char *dir, *id, *tag, *term, *cwd, *signal;
  u64 rows, cols, cap, out_off, err_off, keep_finished;
  bool pty, keep_stdin, close, from_earliest, no_follow, kill_on_hangup, has_rows, has_cols, has_keep;
  char **env;
  int nenv;
  char **argv;
};

static void parse_opts(int argc, char **argv, struct opts *o, const char *allowed) {
  memset(o, 0, sizeof *o);
  o->cap = DEFAULT_CAP;
  o->env = calloc((size_t)argc, sizeof(char *));
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    char key[40];
    snprintf(key, sizeof key, " %s ", a);
    if (strncmp(a, "--", 2) || (strcmp(a, "--") && !strstr(allowed, key))) die(RC_USAGE, "unexpected argument %s", a);
#define NEED() do { if (!v) die(RC_USAGE, "%s needs a value", a); i++; } while (0)
    if (!strcmp(a, "--")) { o->argv = argv + i + 1; break; }
    else if (!strcmp(a, "--dir")) { NEED(); o->dir = v; }
    else if (!strcmp(a, "--id")) { NEED(); o->id = v; }
    else if (!strcmp(a, "--tag")) { NEED(); o->tag = v; }
    else if (!strcmp(a, "--cwd")) { NEED(); o->cwd = v; }
    else if (!strcmp(a, "--signal")) { NEED(); o->signal = v; }
    else if (!strcmp(a, "--env")) { NEED(); o->env[o->nenv++] = argv[i]; }
    else if (!strcmp(a, "--cap")) { NEED(); o->cap = parse_u64(a, v, MIN_CAP, 1ULL << 50); }
    else if (!strcmp(a, "--stdout-offset")) { NEED(); o->out_off = parse_u64(a, v, 0, 1ULL << 62); }
    else if (!strcmp(a, "--stderr-offset")) { NEED(); o->err_off = parse_u64(a, v, 0, 1ULL << 62); }
    else if (!strcmp(a, "--keep-finished")) { NEED(); o->keep_finished = parse_u64(a, v, 0, 1ULL << 40); o->has_keep = true; }
    else if (!strcmp(a, "--rows")) { NEED(); o->rows = parse_u64(a, v, 1, 65535); o->has_rows = true; }
    else if (!strcmp(a, "--cols")) { NEED(); o->cols = parse_u64(a, v, 1, 65535); o->has_cols = true; }
    else if (!strcmp(a, "--pty")) {
      if (i + 3 >= argc) die(RC_USAGE, "--pty needs ROWS COLS TERM");
      o->pty = true;
      o->rows = parse_u64("--pty ROWS", argv[i + 1], 1, 65535);
      o->cols = parse_u64("--pty COLS", argv[i + 2], 1, 65535);
      o->term = argv[i + 3];
      if (!*o->term || strchr(o->term, '=')) die(RC_USAGE, "--pty: invalid TERM");
      i += 3;
    }
    else if (!strcmp(a, "--keep-stdin")) o->keep_stdin = true;
    else if (!strcmp(a, "--close")) o->close = true;
    else if (!strcmp(a, "--from-earliest")) o->from_earliest = true;
    else if (!strcmp(a, "--no-follow")) o->no_follow = true;
    else if (!strcmp(a, "--kill-on-hangup")) o->kill_on_hangup = true;
#undef NEED
  }
  if (!o->dir) die(RC_USAGE, "--dir is required");
}

/* ---------- start and the supervisor ---------- */

struct ostream {
  const char *name;
  int rfd, segfd;
  bool eof;
  u64 off, segstart, segsize, cap;
  offs_t segs;
};

static void ostream_new_segment(struct ostream *s, const char *cdir) {
  char p[PATH_MAX];
  if (s->segfd >= 0) close(s->segfd);
  seg_path(p, cdir, s->name, s->off);
  s->segfd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  s->segstart = s->off;
  if (s->segfd >= 0) offs_push(&s->segs, s->off);
}

/* Appends output; a failed write (disk full) leaves a gap: the next segment starts later. */
static void ostream_write(struct ostream *s, const char *cdir, const char *buf, size_t n) {
  while (n > 0) {
    if (s->segfd < 0 || s->off - s->segstart >= s->segsize) ostream_new_segment(s, cdir);
    size_t chunk = n;
    if (chunk > s->segsize - (s->off - s->segstart)) chunk = (size_t)(s->segsize - (s->off - s->segstart));
    ssize_t w = s->segfd >= 0 ? write(s->segfd, buf, chunk) : -1;
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (s->segfd >= 0) close(s->segfd);
      s->segfd = -1;
      s->off += n;
      break;
    }
    s->off += (u64)w;
    buf += w;
    n -= (size_t)w;
  }
  /* Retention: drop the oldest segments while the stream holds more than cap bytes. */
  while (s->segs.n > 1 && s->off - s->segs.v[0] > s->cap) {
    char p[PATH_MAX];
    seg_path(p, cdir, s->name, s->segs.v[0]);
    unlink(p);
    memmove(s->segs.v, s->segs.v + 1, sizeof(u64) * (size_t)--s->segs.n);
  }
}

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

static void sup_fail(int stfd, const char *cdir, const char *fmt, ...) __attribute__((noreturn, format(printf, 3, 4)));
static void sup_fail(int stfd, const char *cdir, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  rm_rf(cdir);
  dprintf(stfd, "ERR %s", msg);
  _exit(1);
}

/* In the forked child: become the command. Reports failures on ep (CLOEXEC). */
static void child_exec(const struct opts *o, const char *slave, int in_fd, int out_fd, int err_fd, int ep) {
  char msg[PATH_MAX + 128];
  for (int s = 1; s < NSIG; s++)
    if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL); /* undo inherited SIG_IGN (sh's `&`, our SIGHUP) */
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (o->pty) {
    setsid();
    int fd = open(slave, O_RDWR);
    if (fd < 0 || ioctl(fd, TIOCSCTTY, 0) < 0) {
      snprintf(msg, sizeof msg, "open %s: %s", slave, strerror(errno));
      goto fail;
    }
    out_fd = err_fd = in_fd = fd;
  } else {
    setpgid(0, 0);
    if (in_fd < 0) in_fd = open("/dev/null", O_RDONLY);
  }
  if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) {
    snprintf(msg, sizeof msg, "dup2: %s", strerror(errno));
    goto fail;
  }
  if (in_fd > 2) close(in_fd);
  if (out_fd > 2 && out_fd != in_fd) close(out_fd);
  if (err_fd > 2 && err_fd != out_fd && err_fd != in_fd) close(err_fd);
  if (o->pty) setenv("TERM", o->term, 1);
  for (int i = 0; i < o->nenv; i++) {
    char *eq = strchr(o->env[i], '=');
    *eq = 0;
    setenv(o->env[i], eq + 1, 1);
    *eq = '=';
  }
  if (chdir(o->cwd) < 0) {
    snprintf(msg, sizeof msg, "cwd %s: %s", o->cwd, strerror(errno));
    goto fail;
  }
  execvp(o->argv[0], o->argv);
  snprintf(msg, sizeof msg, "exec %s: %s", o->argv[0], strerror(errno));
fail:
  if (write(ep, msg, strlen(msg)) < 0) {}
  _exit(127);
}

/* Closes every inherited descriptor but 0-2 and keep (the SSH session's must not be held). */
static void close_inherited(int keep) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) {
    for (int fd = 3; fd < 1024; fd++)
      if (fd != keep) close(fd);
    return;
  }
  int fds[1024], n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && n < 1024) {
    int fd = atoi(e->d_name);
    if (fd > 2 && fd != keep && fd != dirfd(d)) fds[n++] = fd;
  }
  closedir(d);
  for (int i = 0; i < n; i++) close(fds[i]);
}

static void supervise(struct opts *o, const char *cdir, int stfd) __attribute__((noreturn));
static void supervise(struct opts *o, const char *cdir, int stfd) {
  char p[PATH_MAX], slave[128] = "";
  int nul = open("/dev/null", O_RDWR);
  if (nul >= 0) { dup2(nul, 0); dup2(nul, 1); dup2(nul, 2); if (nul > 2) close(nul); }
  close_inherited(stfd);
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  unsetenv("SANDBOXD_SESSION");
  if (chdir("/") < 0) {}

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGUSR1); /* from `input --close`: stdin.closed appeared */
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) sup_fail(stfd, cdir, "signalfd: %s", strerror(errno));

  struct ostream outs[2] = {{.name = "stdout", .rfd = -1, .segfd = -1}, {.name = "stderr", .rfd = -1, .segfd = -1}};
  int nouts = o->pty ? 1 : 2, master = -1, in_target = -1, in_child = -1, outw = -1, errw = -1, fifo = -1;
  for (int i = 0; i < 2; i++) {
    outs[i].cap = o->cap;
    outs[i].segsize = o->cap / 8;
  }
  if (o->pty) {
    struct winsize ws = {.ws_row = (unsigned short)o->rows, .ws_col = (unsigned short)o->cols};
    master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 || ptsname_r(master, slave, sizeof slave) != 0)
      sup_fail(stfd, cdir, "pty: %s", strerror(errno));
    ioctl(master, TIOCSWINSZ, &ws);
    set_nonblock(master);
    outs[0].rfd = master;
    if (o->keep_stdin) in_target = master;
  } else {
    int po[2], pe[2], pi[2];
    if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) sup_fail(stfd, cdir, "pipe: %s", strerror(errno));
    outs[0].rfd = po[0], outw = po[1], outs[1].rfd = pe[0], errw = pe[1];
    set_nonblock(po[0]);
    set_nonblock(pe[0]);
    if (o->keep_stdin) {
      if (pipe2(pi, O_CLOEXEC) < 0) sup_fail(stfd, cdir, "pipe: %s", strerror(errno));
      in_child = pi[0], in_target = pi[1];
      set_nonblock(in_target);
    }
  }
  if (o->keep_stdin) {
    path_join(p, cdir, "stdin");
    /* O_RDWR: writers coming and going never make it read EOF. */
    if ((fifo = open(p, O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0) sup_fail(stfd, cdir, "open %s: %s", p, strerror(errno));
  }
  for (int i = 0; i < nouts; i++) {
    ostream_new_segment(&outs[i], cdir);
    if (outs[i].segfd < 0) sup_fail(stfd, cdir, "create %s segment: %s", outs[i].name, strerror(errno));
  }

  int ep[2];
  if (pipe2(ep, O_CLOEXEC) < 0) sup_fail(stfd, cdir, "pipe: %s", strerror(errno));
  long long started_at = now_ms(CLOCK_REALTIME), t0 = now_ms(CLOCK_MONOTONIC);
  pid_t pid = fork();
  if (pid < 0) sup_fail(stfd, cdir, "fork: %s", strerror(errno));
  if (pid == 0) child_exec(o, slave, in_child, outw, errw, ep[1]);
  if (!o->pty) setpgid(pid, pid);
  close(ep[1]);
  if (in_child >= 0) close(in_child);
  if (outw >= 0) close(outw);
  if (errw >= 0) close(errw);
  char emsg[PATH_MAX + 128];
  ssize_t en;
  while ((en = read(ep[0], emsg, sizeof emsg - 1)) < 0 && errno == EINTR) {}
  close(ep[0]);
  if (en > 0) {
    emsg[en] = 0;
    waitpid(pid, NULL, 0);
    sup_fail(stfd, cdir, "%s", emsg);
  }

  char state;
  u64 self_start = 0;
  proc_stat(0, &state, &self_start);
  sb_t m = {0};
  sb_str(&m, "{\"version\":1,\"id\":");
  sb_json(&m, o->id);
  sb_str(&m, ",\"tag\":");
  if (o->tag) sb_json(&m, o->tag); else sb_str(&m, "null");
  sb_str(&m, ",\"argv\":[");
  for (int i = 0; o->argv[i]; i++) {
    if (i) sb_str(&m, ",");
    sb_json(&m, o->argv[i]);
  }
  sb_str(&m, "],\"cwd\":");
  sb_json(&m, o->cwd);
  if (o->pty) {
    sb_printf(&m, ",\"pty\":{\"rows\":%llu,\"cols\":%llu,\"term\":", o->rows, o->cols);
    sb_json(&m, o->term);
    sb_str(&m, "},\"ptyPath\":");
    sb_json(&m, slave);
  } else sb_str(&m, ",\"pty\":null,\"ptyPath\":null");
  sb_printf(&m, ",\"keepStdin\":%s,\"cap\":%llu,\"startedAt\":%lld,\"supervisorPid\":%d,\"supervisorStart\":%llu,\"pid\":%d}\n",
            o->keep_stdin ? "true" : "false", o->cap, started_at, (int)getpid(), self_start, (int)pid);
  path_join(p, cdir, "meta.json");
  if (write_atomic(p, m.p, m.len) < 0) {
    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
    sup_fail(stfd, cdir, "write meta.json: %s", strerror(errno));
  }
  dprintf(stfd, "OK %d\n", (int)pid);
  close(stfd);

  /* The loop: output to segments, FIFO to the command's stdin, SIGCHLD. */
  static char buf[FRAME_MAX];
  static char inbuf[65536];
  size_t inlen = 0, inoff = 0;
  bool in_open = o->keep_stdin, close_req = o->keep_stdin && exists(cdir, "stdin.closed"), exited = false;
  int wstatus = 0;
  long long ended_at = 0, exit_mono = 0, last_data = 0;
  for (;;) {
    long long t = now_ms(CLOCK_MONOTONIC);
    if (exited) {
      bool all_eof = true;
      for (int i = 0; i < nouts; i++) all_eof &= outs[i].eof;
      if (all_eof || t - last_data >= IDLE_AFTER_EXIT_MS || t - exit_mono >= MAX_DRAIN_AFTER_EXIT_MS) break;
    }
    if (in_open && close_req && inlen == 0) {
      ssize_t r = read(fifo, inbuf, sizeof inbuf);
      if (r > 0) inlen = (size_t)r, inoff = 0;
      else if (r < 0 && errno == EAGAIN) { /* everything written before the close request is delivered */
        if (o->pty) {
          struct termios tio;
          char eofc = tcgetattr(master, &tio) == 0 && tio.c_cc[VEOF] ? (char)tio.c_cc[VEOF] : 4;
          if (write(master, &eofc, 1) < 0) {}
        } else close(in_target);
        close(fifo);
        path_join(p, cdir, "stdin");
        unlink(p);
        in_open = false;
      }
    }
    struct pollfd pf[6];
    int n = 0, isig = n++, iout[2] = {-1, -1}, ififo = -1, iin = -1;
    pf[isig] = (struct pollfd){.fd = sfd, .events = POLLIN};
    for (int i = 0; i < nouts; i++)
      if (!outs[i].eof) { iout[i] = n; pf[n++] = (struct pollfd){.fd = outs[i].rfd, .events = POLLIN}; }
    if (in_open && inlen == 0 && !close_req) { ififo = n; pf[n++] = (struct pollfd){.fd = fifo, .events = POLLIN}; }
    if (in_open && inlen > 0) { iin = n; pf[n++] = (struct pollfd){.fd = in_target, .events = POLLOUT}; }
    if (poll(pf, (nfds_t)n, exited ? 20 : -1) < 0 && errno != EINTR) break;
    if (pf[isig].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGUSR1 && in_open && exists(cdir, "stdin.closed")) close_req = true;
      }
      if (!exited && waitpid(pid, &wstatus, WNOHANG) == pid) {
        exited = true;
        ended_at = now_ms(CLOCK_REALTIME);
        exit_mono = last_data = now_ms(CLOCK_MONOTONIC);
        if (in_open) {
          if (!o->pty) close(in_target);
          in_open = false;
          inlen = 0;
        }
      }
    }
    for (int i = 0; i < nouts; i++) {
      if (iout[i] < 0 || !pf[iout[i]].revents) continue;
      ssize_t r = read(outs[i].rfd, buf, sizeof buf);
      if (r > 0) {
        ostream_write(&outs[i], cdir, buf, (size_t)r);
        last_data = now_ms(CLOCK_MONOTONIC);
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) outs[i].eof = true; /* EIO: pty slave closed */
    }
    bool try_write = iin >= 0 && pf[iin].revents;
    if (ififo >= 0 && pf[ififo].revents) {
      ssize_t r = read(fifo, inbuf, sizeof inbuf);
      if (r > 0) inlen = (size_t)r, inoff = 0, try_write = true;
    }
    if (in_open && inlen > 0 && try_write) {
      ssize_t w = write(in_target, inbuf + inoff, inlen);
      if (w > 0) inoff += (size_t)w, inlen -= (size_t)w;
      else if (w < 0 && errno != EAGAIN && errno != EINTR) inlen = 0; /* the command closed its stdin: drop */
    }
  }

  for (int i = 0; i < nouts; i++)
    if (outs[i].segfd >= 0) close(outs[i].segfd);
  sb_t x = {0};
  char sname[32];
  if (WIFSIGNALED(wstatus)) {
    sig_name(WTERMSIG(wstatus), sname, sizeof sname);
    sb_printf(&x, "{\"signal\":\"%s\"", sname);
  } else sb_printf(&x, "{\"exitCode\":%d", WEXITSTATUS(wstatus));
  sb_printf(&x, ",\"endedAt\":%lld,\"durationMs\":%lld}\n", ended_at, exit_mono - t0);
  path_join(p, cdir, "exit.json");
  write_atomic(p, x.p, x.len);
  if (o->keep_stdin) {
    path_join(p, cdir, "stdin");
    unlink(p);
  }
  _exit(0);
}

static void lock_dir(const char *dir) {
  char p[PATH_MAX];
  path_join(p, dir, ".lock");
  int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || flock(fd, LOCK_EX) < 0) die(RC_ERR, "lock %s: %s", p, strerror(errno));
}

static int cmd_start(int argc, char **argv) {
  struct opts o;
  char cdir[PATH_MAX], rdir[PATH_MAX], cwd[PATH_MAX];
  parse_opts(argc, argv, &o, " --dir --id --tag --pty --keep-stdin --cap --cwd --env ");
  if (!o.argv || !o.argv[0]) die(RC_USAGE, "start: missing -- ARGV...");
  if (!o.id || !valid_id(o.id)) die(RC_USAGE, "invalid or missing --id: want [A-Za-z0-9_-]{1,64}");
  if (o.tag && (!*o.tag || strlen(o.tag) > 256)) die(RC_USAGE, "--tag: want 1 to 256 bytes");
  for (int i = 0; i < o.nenv; i++) {
    const char *e = o.env[i], *eq = strchr(e, '=');
    bool ok = eq && eq > e && (isalpha((unsigned char)*e) || *e == '_');
    for (const char *q = e; ok && q < eq; q++) ok = isalnum((unsigned char)*q) || *q == '_';
    if (!ok) die(RC_USAGE, "--env: want NAME=VALUE, got %s", e);
  }
  if (!o.cwd || o.cwd[0] != '/') { /* the supervisor and command start from / */
    if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "/");
    if (o.cwd && snprintf(cwd + strlen(cwd), sizeof cwd - strlen(cwd), "/%s", o.cwd) >= (int)(sizeof cwd - strlen(cwd)))
      die(RC_USAGE, "--cwd: path too long");
    o.cwd = cwd;
  }
  mkdir_p(o.dir);
  if (!realpath(o.dir, rdir)) die(RC_ERR, "%s: %s", o.dir, strerror(errno));
  lock_dir(rdir); /* held until the supervisor has written meta.json */
  if (o.tag) {
    DIR *d = opendir(rdir);
    struct dirent *e;
    struct meta m;
    sb_t xj = {0};
    while (d && (e = readdir(d)) != NULL) {
      if (!valid_id(e->d_name)) continue;
      path_join(cdir, rdir, e->d_name);
      if (meta_load(cdir, &m) == 0 && m.has_tag && !strcmp(m.tag, o.tag) && cmd_state(cdir, &m, &xj) == S_RUNNING)
        die(RC_EXISTS, "tag %s is in use by running command %s", o.tag, e->d_name);
      free(m.raw.p);
    }
    if (d) closedir(d);
  }
  path_join(cdir, rdir, o.id);
  if (mkdir(cdir, 0700) < 0) {
    if (errno == EEXIST) die(RC_EXISTS, "command %s already exists", o.id);
    die(RC_ERR, "mkdir %s: %s", cdir, strerror(errno));
  }
  if (o.keep_stdin) {
    char p[PATH_MAX];
    path_join(p, cdir, "stdin");
    if (mkfifo(p, 0600) < 0) { int e = errno; rm_rf(cdir); die(RC_ERR, "mkfifo %s: %s", p, strerror(e)); }
  }
  int sp[2];
  if (pipe2(sp, O_CLOEXEC) < 0) die(RC_ERR, "pipe: %s", strerror(errno));
  fflush(NULL);
  pid_t c = fork();
  if (c < 0) { rm_rf(cdir); die(RC_ERR, "fork: %s", strerror(errno)); }
  if (c == 0) {
    close(sp[0]);
    setsid();
    pid_t g = fork();
    if (g != 0) _exit(g < 0);
    supervise(&o, cdir, sp[1]);
  }
  close(sp[1]);
  waitpid(c, NULL, 0);
  char msg[2048];
  size_t len = 0;
  for (ssize_t r; len < sizeof msg - 1 && ((r = read(sp[0], msg + len, sizeof msg - 1 - len)) > 0 || (r < 0 && errno == EINTR));)
    if (r > 0) len += (size_t)r;
  msg[len] = 0;
  if (!strncmp(msg, "OK ", 3)) {
    printf("started %s", msg + 3);
    return RC_OK;
  }
  rm_rf(cdir);
  die(RC_ERR, "%s", !strncmp(msg, "ERR ", 4) ? msg + 4 : "the supervisor failed to start");
}

/* ---------- attach ---------- */

struct rstream {
  const char *name;
  char type;
  int sid;
  u64 pos, segstart;
  int fd;
  bool dirty;
  offs_t segs;
};

/*
 * attach --kill-on-hangup: the command's process group and directory, set
 * while attached. A foreground command dies with the RPC that attaches to it:
 * when the reader goes away (the RPC ended, sandboxd's SSH connection died),
 * the command is killed, unless it has already ended.
 */
static long long hangup_pgid;
static const char *hangup_cdir;

static void reader_gone(void) {
  if (hangup_pgid > 0 && !exists(hangup_cdir, "exit.json")) kill((pid_t)-hangup_pgid, SIGKILL);
  exit(RC_OK);
}

static void out_iov(struct iovec *iov, int n) {
  while (n > 0) {
    ssize_t w = writev(1, iov, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) reader_gone();
    while (n > 0 && (size_t)w >= iov->iov_len) w -= (ssize_t)iov->iov_len, iov++, n--;
    if (n > 0) iov->iov_base = (char *)iov->iov_base + w, iov->iov_len -= (size_t)w;
  }
}
static void put_be(unsigned char *p, u64 v, int bytes) {
  for (int i = bytes - 1; i >= 0; i--, v >>= 8) p[i] = (unsigned char)v;
}
static void frame_data(char type, u64 off, const void *data, size_t len) {
  unsigned char h[13];
  h[0] = (unsigned char)type;
  put_be(h + 1, off, 8);
  put_be(h + 9, len, 4);
  struct iovec iov[2] = {{h, 13}, {(void *)data, len}};
  out_iov(iov, 2);
}
static void frame_u64s(char type, u64 a, u64 b, u64 c, int n) {
  unsigned char h[25];
  h[0] = (unsigned char)type;
  put_be(h + 1, a, 8);
  put_be(h + 9, b, 8);
  put_be(h + 17, c, 8);
  struct iovec iov = {h, 1 + 8 * (size_t)n};
  out_iov(&iov, 1);
}
static void frame_exit(const char *json, size_t len) {
  unsigned char h[5] = {'X'};
  put_be(h + 1, len, 4);
  struct iovec iov[2] = {{h, 5}, {(void *)json, len}};
  out_iov(iov, 2);
}

/* Sends what is stored from r->pos on, up to budget bytes; true if more is waiting. */
static bool send_stream(const char *cdir, struct rstream *r, char *buf, u64 budget) {
  for (int reopen = 0;;) {
    if (r->fd < 0) {
      if (r->dirty) seg_scan(cdir, r->name, &r->segs), r->dirty = false;
      if (r->segs.n == 0) return false;
      if (r->pos < r->segs.v[0]) { /* dropped by retention while we were behind */
        frame_u64s('G', (u64)r->sid, r->pos, r->segs.v[0], 3);
        r->pos = r->segs.v[0];
      }
      int i = r->segs.n - 1;
      while (i > 0 && r->segs.v[i] > r->pos) i--;
      char p[PATH_MAX];
      seg_path(p, cdir, r->name, r->segs.v[i]);
      if ((r->fd = open(p, O_RDONLY | O_CLOEXEC)) < 0) {
        if (errno != ENOENT || ++reopen > 100) die(RC_ERR, "open %s: %s", p, strerror(errno));
        r->dirty = true;
        continue;
      }
      r->segstart = r->segs.v[i];
    }
    size_t want = FRAME_MAX;
    if (want > budget) want = (size_t)budget;
    ssize_t n = want ? pread(r->fd, buf, want, (off_t)(r->pos - r->segstart)) : 0;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die(RC_ERR, "read %s: %s", r->name, strerror(errno));
    if (n > 0) {
      frame_data(r->type, r->pos, buf, (size_t)n);
      r->pos += (u64)n;
      budget -= (u64)n;
      if (budget == 0) return true;
      continue;
    }
    if (budget == 0) return true;
    /* End of this segment: done unless a later one exists (then this one is complete). */
    if (r->dirty) seg_scan(cdir, r->name, &r->segs), r->dirty = false;
    int next = -1;
    for (int i = 0; i < r->segs.n && next < 0; i++)
      if (r->segs.v[i] > r->segstart) next = i;
    if (next < 0) return false;
    n = pread(r->fd, buf, 1, (off_t)(r->pos - r->segstart)); /* bytes written before the next segment appeared? */
    if (n > 0) continue;
    close(r->fd);
    r->fd = -1;
    if (r->segs.v[next] > r->pos) { /* the writer skipped bytes it could not store */
      frame_u64s('G', (u64)r->sid, r->pos, r->segs.v[next], 3);
      r->pos = r->segs.v[next];
    }
  }
}

static bool drain_inotify(int ifd, struct rstream *rs) {
  char b[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
  bool gone = false;
  for (;;) {
    ssize_t n = read(ifd, b, sizeof b);
    if (n <= 0) return gone;
    for (char *q = b; q < b + n;) {
      struct inotify_event *ev = (struct inotify_event *)q;
      if (ev->mask & IN_Q_OVERFLOW) rs[0].dirty = rs[1].dirty = true;
      if (ev->mask & (IN_DELETE_SELF | IN_IGNORED)) gone = true;
      for (int i = 0; i < 2 && ev->len; i++)
        if (!strncmp(ev->name, rs[i].name, 6) && (ev->mask & (IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM))) rs[i].dirty = true;
      q += sizeof *ev + ev->len;
    }
  }
}

static int cmd_attach(int argc, char **argv) {
  struct opts o;
  struct meta m;
  char cdir[PATH_MAX];
  parse_opts(argc, argv, &o, " --dir --id --stdout-offset --stderr-offset --from-earliest --no-follow --kill-on-hangup ");
  cmd_dir(cdir, o.dir, o.id);
  signal(SIGPIPE, SIG_IGN);
  /* Watch before the first look, so nothing written in between is missed. */
  int ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (ifd >= 0 && inotify_add_watch(ifd, cdir, IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF) < 0) {
    if (errno == ENOENT) die(RC_NOTFOUND, "no command %s", o.id);
    close(ifd);
    ifd = -1;
  }
  meta_must(cdir, o.id, &m);
  if (o.kill_on_hangup) hangup_pgid = m.pid, hangup_cdir = cdir;
  sb_t xj = {0};
  int st = cmd_state(cdir, &m, &xj);
  struct rstream rs[2] = {{.name = "stdout", .type = 'O', .sid = 1, .pos = o.out_off, .fd = -1},
                          {.name = "stderr", .type = 'E', .sid = 2, .pos = o.err_off, .fd = -1}};
  u64 earliest[2], end[2];
  bool below = false;
  for (int i = 0; i < 2; i++) {
    seg_range(cdir, rs[i].name, &rs[i].segs, &earliest[i], &end[i]);
    if (rs[i].pos < earliest[i]) {
      if (o.from_earliest) rs[i].pos = earliest[i];
      else below = true;
    }
  }
  if (below) {
    frame_u64s('D', earliest[0], earliest[1], 0, 2);
    die(RC_PRECOND, "offset no longer held: earliest stdout offset %llu, stderr %llu", earliest[0], earliest[1]);
  }
  int pidfd = -1;
  bool sup_dead = st != S_RUNNING;
  if (!sup_dead) {
    pidfd = (int)syscall(SYS_pidfd_open, (pid_t)m.sup_pid, 0);
    if (pidfd >= 0 && !sup_alive(&m)) sup_dead = true; /* the pidfd may name a recycled pid */
  }
  static char buf[FRAME_MAX];
  for (;;) {
    /* Events first: whatever is written after this point wakes the poll below. */
    bool gone = ifd >= 0 && drain_inotify(ifd, rs);
    bool ended = sup_dead;
    if (!ended && pidfd < 0 && !sup_alive(&m)) ended = true; /* no pidfd: checked each wake-up */
    if (!ended && exists(cdir, "exit.json")) ended = true;
    if (ended) rs[0].dirty = rs[1].dirty = true; /* all output is stored: look at every segment */
    bool more = send_stream(cdir, &rs[0], buf, 4 << 20);
    more |= send_stream(cdir, &rs[1], buf, 4 << 20);
    if (more) continue;
    if (ended) {
      cmd_state(cdir, &m, &xj);
      frame_exit(xj.p, xj.len);
      return RC_OK;
    }
    if (o.no_follow) return RC_OK;
    if (gone) die(RC_NOTFOUND, "command %s was removed", o.id);
    struct pollfd pf[3] = {{.fd = ifd, .events = POLLIN}, {.fd = 1, .events = 0}, {.fd = pidfd, .events = POLLIN}};
    if (poll(pf, 3, ifd < 0 ? 50 : (pidfd < 0 ? 1000 : -1)) < 0 && errno != EINTR) die(RC_ERR, "poll: %s", strerror(errno));
    if (pf[1].revents & (POLLERR | POLLHUP | POLLNVAL)) reader_gone();
    if (pidfd >= 0 && pf[2].revents) sup_dead = true;
  }
}

/* ---------- input, signal, resize ---------- */

static void must_run(const char *cdir, const struct meta *m) {
  sb_t xj = {0};
  if (cmd_state(cdir, m, &xj) != S_RUNNING) die(RC_PRECOND, "the command has finished");
}

static int cmd_input(int argc, char **argv) {
  struct opts o;
  struct meta m;
  char cdir[PATH_MAX], p[PATH_MAX];
  parse_opts(argc, argv, &o, " --dir --id --close ");
  cmd_dir(cdir, o.dir, o.id);
  meta_must(cdir, o.id, &m);
  if (!m.keep_stdin) die(RC_PRECOND, "stdin is not open (started without --keep-stdin)");
  must_run(cdir, &m);
  if (exists(cdir, "stdin.closed")) die(RC_PRECOND, "stdin is closed");
  signal(SIGPIPE, SIG_IGN);
  path_join(p, cdir, "stdin");
  int fd = open(p, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENXIO || errno == ENOENT) die(RC_PRECOND, "stdin is closed or the command has finished");
    die(RC_ERR, "open %s: %s", p, strerror(errno));
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  static char buf[65536];
  /* Exit 3 only when a byte cannot be delivered: a command that ends right after
   * its last input (`exit\n` to a shell) is no failure of the input. */
  for (bool gone = false;;) {
    struct pollfd pf[2] = {{.fd = 0, .events = POLLIN}, {.fd = gone ? -1 : fd, .events = 0}};
    if (poll(pf, 2, -1) < 0) {
      if (errno == EINTR) continue;
      die(RC_ERR, "poll: %s", strerror(errno));
    }
    if (pf[1].revents) gone = true; /* the supervisor closed stdin or exited */
    if (!pf[0].revents) continue;
    ssize_t n = read(0, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die(RC_ERR, "read stdin: %s", strerror(errno));
    if (n == 0) break;
    if (gone || write_all(fd, buf, (size_t)n) < 0) {
      if (gone) errno = EPIPE;
      if (errno == EPIPE) die(RC_PRECOND, "stdin is closed or the command has finished");
      die(RC_ERR, "write %s: %s", p, strerror(errno));
    }
  }
  close(fd);
  if (o.close) {
    path_join(p, cdir, "stdin.closed");
    int cfd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (cfd < 0) die(RC_ERR, "create %s: %s", p, strerror(errno));
    close(cfd);
    if (sup_alive(&m)) kill((pid_t)m.sup_pid, SIGUSR1);
  }
  return RC_OK;
}

static int cmd_signal(int argc, char **argv) {
  struct opts o;
  struct meta m;
  char cdir[PATH_MAX];
  parse_opts(argc, argv, &o, " --dir --id --signal ");
  cmd_dir(cdir, o.dir, o.id);
  if (!o.signal) die(RC_USAGE, "--signal is required");
  int sig = sig_parse(o.signal);
  if (sig < 0) die(RC_USAGE, "unknown signal %s", o.signal);
  meta_must(cdir, o.id, &m);
  must_run(cdir, &m);
  if (kill(-(pid_t)m.pid, sig) < 0) {
    if (errno == ESRCH) die(RC_PRECOND, "the command has finished");
    die(RC_ERR, "kill: %s", strerror(errno));
  }
  return RC_OK;
}

static int cmd_resize(int argc, char **argv) {
  struct opts o;
  struct meta m;
  char cdir[PATH_MAX], p[PATH_MAX];
  parse_opts(argc, argv, &o, " --dir --id --rows --cols ");
  cmd_dir(cdir, o.dir, o.id);
  if (!o.has_rows || !o.has_cols) die(RC_USAGE, "--rows and --cols are required");
  meta_must(cdir, o.id, &m);
  if (!m.pty) die(RC_PRECOND, "no pty");
  must_run(cdir, &m);
  int fd = open(m.pty_path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) die(RC_PRECOND, "open %s: %s", m.pty_path, strerror(errno));
  /* The supervisor holds the master until exit.json exists: if it still runs, fd is our pty. */
  must_run(cdir, &m);
  struct winsize ws = {.ws_row = (unsigned short)o.rows, .ws_col = (unsigned short)o.cols};
  if (ioctl(fd, TIOCSWINSZ, &ws) < 0) die(RC_ERR, "resize: %s", strerror(errno));
  close(fd);
  char w[64];
  int n = snprintf(w, sizeof w, "{\"rows\":%llu,\"cols\":%llu}\n", o.rows, o.cols);
  path_join(p, cdir, "winsize.json");
  write_atomic(p, w, (size_t)n);
  return RC_OK;
}

/* ---------- list, gc ---------- */

struct item { long long key; char *text; };
static int item_cmp(const void *a, const void *b) {
  long long x = ((const struct item *)a)->key, y = ((const struct item *)b)->key;
  return x < y ? -1 : x > y;
}

static int cmd_list(int argc, char **argv) {
  struct opts o;
  parse_opts(argc, argv, &o, " --dir ");
  DIR *d = opendir(o.dir);
  if (!d) {
    if (errno == ENOENT) return RC_OK;
    die(RC_ERR, "%s: %s", o.dir, strerror(errno));
  }
  struct item *items = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  offs_t segs = {0};
  while ((e = readdir(d)) != NULL) {
    char cdir[PATH_MAX];
    struct meta m;
    if (!valid_id(e->d_name)) continue;
    path_join(cdir, o.dir, e->d_name);
    if (meta_load(cdir, &m) != 0) continue;
    sb_t xj = {0}, l = {0};
    int st = cmd_state(cdir, &m, &xj);
    sb_str(&l, "{\"id\":");
    sb_json(&l, e->d_name);
    sb_str(&l, ",\"tag\":");
    if (m.has_tag) sb_json(&l, m.tag); else sb_str(&l, "null");
    sb_str(&l, ",\"argv\":");
    sb_add(&l, m.argv_s, (size_t)(m.argv_e - m.argv_s));
    sb_printf(&l, ",\"startedAt\":%lld,\"pid\":%lld,\"state\":\"%s\",\"exit\":%s", m.started_at, m.pid,
              st == S_RUNNING ? "running" : "exited", st == S_RUNNING ? "null" : xj.p);
    for (int i = 0; i < 2; i++) {
      u64 ea, en;
      seg_range(cdir, i ? "stderr" : "stdout", &segs, &ea, &en);
      sb_printf(&l, ",\"%s\":{\"earliest\":%llu,\"end\":%llu}", i ? "stderr" : "stdout", ea, en);
    }
    sb_printf(&l, ",\"pty\":%s}\n", m.pty ? "true" : "false");
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      if (!(items = realloc(items, cap * sizeof *items))) die(RC_ERR, "out of memory");
    }
    items[n++] = (struct item){m.started_at, l.p};
    free(m.raw.p);
    free(xj.p);
  }
  closedir(d);
  if (n > 1) qsort(items, n, sizeof *items, item_cmp);
  for (size_t i = 0; i < n; i++) fputs(items[i].text, stdout);
  return RC_OK;
}

/* Newest modification time (ms) of the files in a command's directory. */
static long long newest_mtime(const char *cdir) {
  long long best = 0;
  DIR *d = opendir(cdir);
  struct dirent *e;
  struct stat st;
  while (d && (e = readdir(d)) != NULL)
    if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      long long t = (long long)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
      if (t > best) best = t;
    }
  if (d) closedir(d);
  return best;
}

static int cmd_gc(int argc, char **argv) {
  struct opts o;
  parse_opts(argc, argv, &o, " --dir --keep-finished ");
  if (!o.has_keep) die(RC_USAGE, "--keep-finished is required");
  DIR *d = opendir(o.dir);
  if (!d) {
    if (errno == ENOENT) return RC_OK;
    die(RC_ERR, "%s: %s", o.dir, strerror(errno));
  }
  lock_dir(o.dir); /* no start is half-way */
  long long now = now_ms(CLOCK_REALTIME), keep = (long long)o.keep_finished * 1000;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    char cdir[PATH_MAX];
    struct meta m;
    sb_t xj = {0};
    long long ended;
    if (!valid_id(e->d_name)) continue;
    path_join(cdir, o.dir, e->d_name);
    int r = meta_load(cdir, &m);
    if (r == -1) { /* a start that died before writing meta.json */
      if (now - newest_mtime(cdir) <= keep + 60000) continue;
    } else {
      int st = r == 0 ? cmd_state(cdir, &m, &xj) : S_LOST;
      if (st == S_RUNNING) continue;
      if (st == S_LOST || !js_num(xj.p, "endedAt", &ended)) ended = newest_mtime(cdir);
      if (now - ended <= keep) continue;
    }
    rm_rf(cdir);
    printf("removed %s\n", e->d_name);
    free(m.raw.p);
    free(xj.p);
  }
  closedir(d);
  return RC_OK;
}

/* ---------- watch ---------- */

/*
 * `watch --path P [--recursive]`: inotify on a directory (and, recursive, on
 * every subdirectory, also ones created later), events written as frames on
 * stdout: 'R' once the watches are set, 'W' per event, 'Q' when events were
 * lost (the kernel queue overflowed). Exits 0 when the reader goes away, 6
 * when the inotify limits are used up.
 */
#define RC_LIMIT 6
#define WATCH_REC_MAX (1 + 1 + 8 + 2 + PATH_MAX + 2 + PATH_MAX)
enum { EV_CREATED = 1, EV_MODIFIED = 2, EV_REMOVED = 3, EV_RENAMED = 4 };

struct wdir { int wd; char *rel; };
static struct wdir *wdirs;
static size_t nwdirs, capwdirs;
static int w_ifd;
static const char *w_root;
static unsigned char w_out[1 << 16];
static size_t w_outlen;

static void w_flush(void) {
  if (!w_outlen) return;
  struct iovec iov = {w_out, w_outlen};
  out_iov(&iov, 1);
  w_outlen = 0;
}
static void w_put(const void *p, size_t n) {
  if (w_outlen + n > sizeof w_out) w_flush();
  memcpy(w_out + w_outlen, p, n);
  w_outlen += n;
}
static void w_event(int type, bool is_dir, long long ms, const char *path, const char *old) {
  size_t pl = strlen(path), ol = old ? strlen(old) : 0;
  if (pl > PATH_MAX || ol > PATH_MAX) return;
  unsigned char h[5 + 12];
  size_t len = 1 + 1 + 8 + 2 + pl + 2 + ol;
  h[0] = 'W';
  put_be(h + 1, len, 4);
  h[5] = (unsigned char)type;
  h[6] = is_dir;
  put_be(h + 7, (u64)ms, 8);
  put_be(h + 15, pl, 2);
  w_put(h, 17);
  w_put(path, pl);
  unsigned char l2[2];
  put_be(l2, ol, 2);
  w_put(l2, 2);
  if (ol) w_put(old, ol);
}
static void w_overflow(void) { w_put("Q", 1); }

static struct wdir *w_find(int wd) {
  for (size_t i = 0; i < nwdirs; i++)
    if (wdirs[i].wd == wd) return &wdirs[i];
  return NULL;
}
static void w_join(char *out, size_t cap, const char *a, const char *b) {
  if (!*a) snprintf(out, cap, "%s", b);
  else if (!*b) snprintf(out, cap, "%s", a);
  else snprintf(out, cap, "%s/%s", a, b);
}
static void w_abs(char *out, const char *rel) {
  if (*rel) snprintf(out, PATH_MAX, "%s/%s", w_root, rel);
  else snprintf(out, PATH_MAX, "%s", w_root);
}

#define W_MASK (IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_EXCL_UNLINK)

/* Adds a watch on rel (and, when recursing, its subdirectories); with scan, reports what is in them as created. */
static void w_add(const char *rel, bool recursive, bool scan, long long ms) {
  char abs[PATH_MAX];
  w_abs(abs, rel);
  int wd = inotify_add_watch(w_ifd, abs, W_MASK | IN_ONLYDIR | (*rel ? IN_DONT_FOLLOW : 0));
  if (wd < 0) {
    if (errno == ENOSPC) {
      if (scan) w_overflow();
      w_flush();
      die(RC_LIMIT, "inotify watch limit reached (fs.inotify.max_user_watches) at %s", *rel ? rel : ".");
    }
    if (!*rel && errno == ENOENT) die(RC_NOTFOUND, "%s: no such directory", w_root);
    if (!*rel && errno == ENOTDIR) die(RC_PRECOND, "%s: not a directory", w_root);
    if (!*rel) die(RC_ERR, "watch %s: %s", w_root, strerror(errno));
    return; /* vanished or unreadable meanwhile */
  }
  struct wdir *e = w_find(wd);
  if (e) free(e->rel);
  else {
    if (nwdirs == capwdirs) {
      capwdirs = capwdirs ? capwdirs * 2 : 64;
      wdirs = realloc(wdirs, capwdirs * sizeof *wdirs);
      if (!wdirs) die(RC_ERR, "out of memory");
    }
    e = &wdirs[nwdirs++];
    e->wd = wd;
  }
  e->rel = strdup(rel);
  if (!recursive && !scan) return;
  DIR *d = opendir(abs);
  if (!d) return;
  for (struct dirent *de; (de = readdir(d));) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    char sub[PATH_MAX], subabs[PATH_MAX];
    w_join(sub, sizeof sub, rel, de->d_name);
    w_abs(subabs, sub);
    struct stat st;
    bool dir = lstat(subabs, &st) == 0 && S_ISDIR(st.st_mode);
    if (scan) w_event(EV_CREATED, dir, ms, sub, NULL);
    if (dir && recursive) w_add(sub, true, scan, ms);
  }
  closedir(d);
}

/* A directory renamed within the tree: its watches' paths follow. */
static void w_rename_prefix(const char *from, const char *to) {
  size_t fl = strlen(from);
  for (size_t i = 0; i < nwdirs; i++) {
    const char *r = wdirs[i].rel;
    if (strncmp(r, from, fl) || (r[fl] && r[fl] != '/')) continue;
    char n[PATH_MAX];
    snprintf(n, sizeof n, "%s%s", to, r + fl);
    free(wdirs[i].rel);
    wdirs[i].rel = strdup(n);
  }
}

/* A directory moved out of the tree: stop watching it and what is below (their events would carry stale paths). */
static void w_forget_prefix(const char *rel) {
  size_t l = strlen(rel);
  for (size_t i = 0; i < nwdirs; i++) {
    const char *r = wdirs[i].rel;
    if (!strncmp(r, rel, l) && (!r[l] || r[l] == '/')) inotify_rm_watch(w_ifd, wdirs[i].wd); /* IN_IGNORED drops it from the table */
  }
}

static int cmd_watch(int argc, char **argv) {
  bool recursive = false;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--path") && i + 1 < argc) w_root = argv[++i];
    else if (!strcmp(argv[i], "--recursive")) recursive = true;
    else die(RC_USAGE, "unexpected argument %s", argv[i]);
  }
  if (!w_root || !*w_root) die(RC_USAGE, "--path is required");
  signal(SIGPIPE, SIG_IGN);
  struct stat st;
  if (stat(w_root, &st) < 0) {
    if (errno == ENOENT) die(RC_NOTFOUND, "%s: no such directory", w_root);
    if (errno == ENOTDIR) die(RC_PRECOND, "%s: not a directory", w_root);
    if (errno == EACCES) die(RC_PERM, "%s: permission denied", w_root);
    die(RC_ERR, "%s: %s", w_root, strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) die(RC_PRECOND, "%s: not a directory", w_root);
  w_ifd = inotify_init1(IN_CLOEXEC);
  if (w_ifd < 0) {
    if (errno == EMFILE) die(RC_LIMIT, "inotify instance limit reached (fs.inotify.max_user_instances)");
    die(RC_ERR, "inotify_init: %s", strerror(errno));
  }
  w_add("", recursive, false, 0);
  w_put("R", 1);
  w_flush();
  static char buf[1 << 16] __attribute__((aligned(__alignof__(struct inotify_event))));
  for (;;) {
    struct pollfd pf[2] = {{.fd = w_ifd, .events = POLLIN}, {.fd = 1, .events = 0}};
    if (poll(pf, 2, -1) < 0 && errno != EINTR) die(RC_ERR, "poll: %s", strerror(errno));
    if (pf[1].revents & (POLLERR | POLLHUP | POLLNVAL)) reader_gone();
    if (!(pf[0].revents & POLLIN)) continue;
    ssize_t n = read(w_ifd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die(RC_ERR, "read inotify: %s", n < 0 ? strerror(errno) : "end of file");
    long long ms = now_ms(CLOCK_REALTIME);
    /* A pending IN_MOVED_FROM, paired with the IN_MOVED_TO of the same cookie that follows it. */
    char from[PATH_MAX] = "";
    uint32_t from_cookie = 0;
    bool from_dir = false, have_from = false;
    char last_mod[PATH_MAX] = "";
    for (char *p = buf; p < buf + n;) {
      struct inotify_event *ev = (struct inotify_event *)p;
      p += sizeof *ev + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) { w_overflow(); continue; }
      struct wdir *wdir = w_find(ev->wd);
      if (ev->mask & IN_IGNORED) {
        if (wdir) { free(wdir->rel); *wdir = wdirs[--nwdirs]; }
        continue;
      }
      if (!wdir) continue;
      bool dir = ev->mask & IN_ISDIR;
      char path[PATH_MAX];
      if (ev->mask & IN_DELETE_SELF) continue; /* reported by the parent's IN_DELETE */
      if (!ev->len) continue;
      w_join(path, sizeof path, wdir->rel, ev->name);
      if (have_from && !((ev->mask & IN_MOVED_TO) && ev->cookie == from_cookie)) {
        w_event(EV_REMOVED, from_dir, ms, from, NULL);
        if (from_dir) w_forget_prefix(from);
        have_from = false;
      }
      if (!(ev->mask & IN_MODIFY)) last_mod[0] = 0;
      if (ev->mask & IN_MOVED_FROM) {
        snprintf(from, sizeof from, "%s", path);
        from_cookie = ev->cookie, from_dir = dir, have_from = true;
      } else if (ev->mask & IN_MOVED_TO) {
        if (have_from) {
          w_event(EV_RENAMED, dir, ms, path, from);
          if (dir) w_rename_prefix(from, path);
          have_from = false;
        } else {
          w_event(EV_CREATED, dir, ms, path, NULL);
          if (dir && recursive) w_add(path, true, true, ms);
        }
      } else if (ev->mask & IN_CREATE) {
        w_event(EV_CREATED, dir, ms, path, NULL);
        if (dir && recursive) w_add(path, true, true, ms);
      } else if (ev->mask & IN_DELETE) {
        w_event(EV_REMOVED, dir, ms, path, NULL);
      } else if (ev->mask & (IN_MODIFY | IN_ATTRIB)) {
        if ((ev->mask & IN_MODIFY) && !strcmp(last_mod, path)) continue; /* one per path and read */
        w_event(EV_MODIFIED, dir, ms, path, NULL);
        if (ev->mask & IN_MODIFY) snprintf(last_mod, sizeof last_mod, "%s", path);
      }
    }
    if (have_from) { /* moved out of the tree */
      w_event(EV_REMOVED, from_dir, ms, from, NULL);
      if (from_dir) w_forget_prefix(from);
    }
    w_flush();
  }
}

int main(int argc, char **argv) {
  const char *sub = argc > 1 ? argv[1] : "";
  if (!strcmp(sub, "version")) { printf("sbx-run %d\n", SBX_RUN_VERSION); return RC_OK; }
  if (!strcmp(sub, "start")) return cmd_start(argc - 2, argv + 2);
  if (!strcmp(sub, "attach")) return cmd_attach(argc - 2, argv + 2);
  if (!strcmp(sub, "input")) return cmd_input(argc - 2, argv + 2);
  if (!strcmp(sub, "signal")) return cmd_signal(argc - 2, argv + 2);
  if (!strcmp(sub, "resize")) return cmd_resize(argc - 2, argv + 2);
  if (!strcmp(sub, "list")) return cmd_list(argc - 2, argv + 2);
  if (!strcmp(sub, "gc")) return cmd_gc(argc - 2, argv + 2);
  if (!strcmp(sub, "watch")) return cmd_watch(argc - 2, argv + 2);
  die(RC_USAGE, "usage: sbx-run version|start|attach|input|signal|resize|list|gc|watch ... (see README.md)");
}
