#include "netpoll/console/crash_report.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "alloc_guard.h"
#include "test_support.h"

// Functions the reports must name. noipa: never inlined, cloned or merged;
// the store after each call keeps it from being a tail call, which would
// take the caller's frame out of the trace.
namespace {
volatile int g_cr_sink = 0;
}  // namespace

extern "C" [[gnu::noipa]] int np_cr_crash_inner(volatile int* p) { return *p + 1; }
extern "C" [[gnu::noipa]] int np_cr_crash_outer(volatile int* p) {
  const int v = np_cr_crash_inner(p);
  g_cr_sink = v;
  return v;
}
// rawmemchr: a libc function that AddressSanitizer does not intercept, so
// that both builds call libc's own (through the PLT, an IFUNC-chosen
// variant: a leaf without a frame that reads the bad pointer first thing).
extern "C" [[gnu::noipa]] std::size_t np_cr_libc_caller(const char* p) {
  const void* end = ::rawmemchr(p, 'x');
  g_cr_sink = 1;
  return static_cast<std::size_t>(static_cast<const char*>(end) - p);
}
extern "C" [[gnu::noipa]] void np_cr_capture(ucontext_t* uc) {
  ::getcontext(uc);
  g_cr_sink = g_cr_sink + 1;
}

namespace np::console {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    out.emplace_back(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
  }
  return out;
}

// (No std::regex: g++ 12 warns inside <regex> under the sanitizers.)

// "0x" and lower-case hex digits: exactly `digits` of them, or at least one
// when `digits` is 0.
bool is_hex(std::string_view s, std::size_t digits = 0) {
  if (!s.starts_with("0x")) return false;
  s.remove_prefix(2);
  if (s.empty() || (digits != 0 && s.size() != digits)) return false;
  return s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// "name 0x<16 digits>" for each of `names`, in order, one space apart;
// what follows the last pair goes to *rest.
bool is_register_line(std::string_view line, std::initializer_list<std::string_view> names, std::string_view* rest) {
  bool first = true;
  for (const std::string_view name : names) {
    if (!first && !line.starts_with(' ')) return false;
    if (!first) line.remove_prefix(1);
    first = false;
    if (!line.starts_with(name) || line.substr(name.size(), 1) != " ") return false;
    line.remove_prefix(name.size() + 1);
    if (line.size() < 18 || !is_hex(line.substr(0, 18), 16)) return false;
    line.remove_prefix(18);
  }
  *rest = line;
  return true;
}

bool is_register_line_1(std::string_view line) {
  std::string_view rest;
  return is_register_line(line, {"rip", "rsp", "rbp", "rax", "rbx", "rcx", "rdx", "rsi", "rdi"}, &rest) && rest.empty();
}

// ... eflags 0x<16> trapno <n> err 0x<hex>
bool is_register_line_2(std::string_view line) {
  std::string_view rest;
  if (!is_register_line(line, {"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "eflags"}, &rest)) return false;
  if (!rest.starts_with(" trapno ")) return false;
  rest.remove_prefix(8);
  const std::size_t sp = rest.find(' ');
  if (sp == 0 || sp == std::string_view::npos ||
      rest.substr(0, sp).find_first_not_of("0123456789") != std::string_view::npos) {
    return false;
  }
  rest.remove_prefix(sp);
  return rest.starts_with(" err ") && is_hex(rest.substr(5));
}

// One backtrace line, "#<index> 0x<16 digits>[ <function>+0x<offset> (<object>)]"
// or "#<index> 0x<16 digits> ?? (<object>+0x<offset>)".
struct FrameLine {
  std::size_t index = 0;
  std::uint64_t address = 0;
  std::string function;  // empty: no name; "??": in an object, no function
  std::string object;
};

std::optional<FrameLine> parse_frame(std::string_view line) {
  FrameLine f;
  if (!line.starts_with('#')) return std::nullopt;
  line.remove_prefix(1);
  const std::size_t sp = line.find(' ');
  if (sp == std::string_view::npos || std::from_chars(line.data(), line.data() + sp, f.index).ptr != line.data() + sp) {
    return std::nullopt;
  }
  line.remove_prefix(sp + 1);
  if (line.size() < 18 || !is_hex(line.substr(0, 18), 16)) return std::nullopt;
  std::from_chars(line.data() + 2, line.data() + 18, f.address, 16);
  line.remove_prefix(18);
  if (line.empty()) return f;
  const std::size_t open = line.rfind(" (");
  if (!line.starts_with(' ') || !line.ends_with(')') || open == std::string_view::npos || open == 0) {
    return std::nullopt;
  }
  f.object = line.substr(open + 2, line.size() - open - 3);
  const std::string_view what = line.substr(1, open - 1);
  if (what == "??") {
    f.function = "??";
    return f;
  }
  const std::size_t plus = what.rfind("+0x");
  if (plus == std::string_view::npos || plus == 0 || !is_hex(what.substr(plus + 1))) return std::nullopt;
  f.function = what.substr(0, plus);
  return f;
}

// The frame at `line`, which must be number `index`, named.
FrameLine named_frame(const std::string& line, std::size_t index) {
  const auto f = parse_frame(line);
  EXPECT_TRUE(f.has_value()) << "not a frame line: " << line;
  if (!f) return {};
  EXPECT_EQ(f->index, index) << line;
  return *f;
}

bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

std::string hex16(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// ---------------------------------------------------------------------------
// The first line, from signals made up here.

siginfo_t signal_info(int signo, int code) {
  siginfo_t si{};
  si.si_signo = signo;
  si.si_code = code;
  return si;
}
siginfo_t fault(int signo, int code, std::uintptr_t addr) {
  siginfo_t si = signal_info(signo, code);
  si.si_addr = reinterpret_cast<void*>(addr);
  return si;
}
siginfo_t sent(int signo, int code, pid_t pid) {
  siginfo_t si = signal_info(signo, code);
  si.si_pid = pid;
  si.si_uid = 0;
  return si;
}

std::string first_line(const siginfo_t& si) {
  FixedText<4096> t;
  format_crash_report(si, nullptr, nullptr, t);
  return lines_of(t.view()).at(0);
}

TEST(CrashReport, NamesTheSignalItsCodeAndTheFaultAddress) {
  EXPECT_EQ(first_line(fault(SIGSEGV, SEGV_MAPERR, 0x10)),
            "crashed: SIGSEGV (SEGV_MAPERR: address not mapped) at address 0x0000000000000010");
  EXPECT_EQ(first_line(fault(SIGSEGV, SEGV_ACCERR, 0x7f0000001000)),
            "crashed: SIGSEGV (SEGV_ACCERR: invalid permissions for mapped object) at address 0x00007f0000001000");
  EXPECT_EQ(first_line(fault(SIGSEGV, SEGV_PKUERR, 0x20)),
            "crashed: SIGSEGV (SEGV_PKUERR: access denied by memory protection keys) at address 0x0000000000000020");
  EXPECT_EQ(first_line(fault(SIGBUS, BUS_ADRALN, 0x1001)),
            "crashed: SIGBUS (BUS_ADRALN: invalid address alignment) at address 0x0000000000001001");
  EXPECT_EQ(first_line(fault(SIGBUS, BUS_ADRERR, 0x2000)),
            "crashed: SIGBUS (BUS_ADRERR: nonexistent physical address) at address 0x0000000000002000");
  EXPECT_EQ(first_line(fault(SIGILL, ILL_ILLOPC, 0x401000)),
            "crashed: SIGILL (ILL_ILLOPC: illegal opcode) at address 0x0000000000401000");
  EXPECT_EQ(first_line(fault(SIGFPE, FPE_INTDIV, 0x401002)),
            "crashed: SIGFPE (FPE_INTDIV: integer divide by zero) at address 0x0000000000401002");
  // A fault code this table does not know is still the kernel's: the address is real.
  EXPECT_EQ(first_line(fault(SIGSEGV, 99, 0x30)), "crashed: SIGSEGV (si_code 99) at address 0x0000000000000030");
}

TEST(CrashReport, GivesNoAddressWhereTheKernelGaveNone) {
  // A general-protection fault (a non-canonical pointer) has no address.
  EXPECT_EQ(first_line(fault(SIGSEGV, SI_KERNEL, 0)),
            "crashed: SIGSEGV (SI_KERNEL: general protection fault, address not known)");
  EXPECT_EQ(first_line(fault(SIGTRAP, SI_KERNEL, 0)), "crashed: SIGTRAP (SI_KERNEL: sent by the kernel)");
  EXPECT_EQ(first_line(fault(SIGTRAP, TRAP_BRKPT, 0x1234)), "crashed: SIGTRAP (TRAP_BRKPT: process breakpoint)");
}

TEST(CrashReport, SaysWhichProcessSentASignal) {
  EXPECT_EQ(first_line(sent(SIGTERM, SI_USER, 4242)), "crashed: SIGTERM (SI_USER: kill, sent by pid 4242)");
  EXPECT_EQ(first_line(sent(SIGABRT, SI_TKILL, 77)), "crashed: SIGABRT (SI_TKILL: tkill or tgkill, sent by pid 77)");
  EXPECT_EQ(first_line(sent(SIGQUIT, SI_QUEUE, 5)), "crashed: SIGQUIT (SI_QUEUE: sigqueue, sent by pid 5)");
  // A SIGSEGV sent with kill is no fault: si_addr would be the sender's pid and uid.
  EXPECT_EQ(first_line(sent(SIGSEGV, SI_USER, 9)), "crashed: SIGSEGV (SI_USER: kill, sent by pid 9)");
  EXPECT_EQ(first_line(sent(42, SI_QUEUE, 6)), "crashed: signal 42 (SI_QUEUE: sigqueue, sent by pid 6)");
}

TEST(CrashReport, NamesTheSystemCallSeccompRefused) {
  siginfo_t si = signal_info(SIGSYS, 1);  // SYS_SECCOMP
  si.si_syscall = 59;
  EXPECT_EQ(first_line(si), "crashed: SIGSYS (SYS_SECCOMP: system call refused by seccomp, system call 59)");
}

// ---------------------------------------------------------------------------
// Whole reports, taken outside a handler.

TEST(CrashReport, FromAContextListsRegistersAndNamedFrames) {
  ucontext_t uc;
  np_cr_capture(&uc);
  FixedText<16384> t;
  ASSERT_TRUE(format_crash_report(fault(SIGSEGV, SEGV_MAPERR, 0x10), &uc, &test_symbolizer(), t));
  const auto lines = lines_of(t.view());
  ASSERT_GE(lines.size(), 7u) << t.view();
  EXPECT_TRUE(is_register_line_1(lines[2])) << lines[2];
  EXPECT_EQ(lines[2].substr(0, 22), "rip " + hex16(static_cast<std::uint64_t>(uc.uc_mcontext.gregs[REG_RIP])));
  EXPECT_TRUE(is_register_line_2(lines[3])) << lines[3];
  EXPECT_EQ(lines[4], "backtrace:");
  // getcontext() saved the pc it returns to, inside np_cr_capture.
  const FrameLine f0 = named_frame(lines[5], 0);
  EXPECT_EQ(f0.function, "np_cr_capture");
  EXPECT_EQ(f0.object, "console_test");
  EXPECT_EQ(f0.address, static_cast<std::uint64_t>(uc.uc_mcontext.gregs[REG_RIP]));
  const FrameLine f1 = named_frame(lines[6], 1);
  EXPECT_TRUE(contains(f1.function, "FromAContextListsRegistersAndNamedFrames_Test8TestBody")) << lines[6];
  EXPECT_EQ(f1.object, "console_test");
}

TEST(CrashReport, WithoutAContextTracesTheReportingCode) {
  FixedText<16384> t;
  ASSERT_TRUE(format_crash_report(fault(SIGSEGV, SEGV_MAPERR, 0x10), nullptr, &test_symbolizer(), t));
  const auto lines = lines_of(t.view());
  ASSERT_GE(lines.size(), 5u);
  EXPECT_EQ(lines[2], "registers: not available (no signal context)");
  EXPECT_EQ(lines[3], "backtrace (of the code that wrote this report):");
  bool saw_test = false;
  for (std::size_t i = 4; i < lines.size(); ++i) {
    saw_test = saw_test || lines[i].find("WithoutAContextTracesTheReportingCode") != std::string::npos;
  }
  EXPECT_TRUE(saw_test) << t.view();
}

TEST(CrashReport, WithoutASymbolizerListsAddressesOnly) {
  ucontext_t uc;
  np_cr_capture(&uc);
  FixedText<16384> t;
  ASSERT_TRUE(format_crash_report(fault(SIGSEGV, SEGV_MAPERR, 0x10), &uc, nullptr, t));
  const auto lines = lines_of(t.view());
  ASSERT_GE(lines.size(), 7u);
  for (std::size_t i = 5; i < lines.size(); ++i) {
    const auto f = parse_frame(lines[i]);
    ASSERT_TRUE(f.has_value()) << lines[i];
    EXPECT_EQ(lines[i], "#" + std::to_string(i - 5) + " " + hex16(f->address));
  }
}

TEST(CrashReport, NamesTheThreadThatCrashed) {
  std::string line;
  pid_t tid = 0;
  std::thread worker([&] {
    ::prctl(PR_SET_NAME, "np-worker-1", 0, 0, 0);
    tid = ::gettid();
    FixedText<4096> t;
    format_crash_report(fault(SIGSEGV, SEGV_MAPERR, 0x10), nullptr, nullptr, t);
    line = lines_of(t.view()).at(1);
  });
  worker.join();
  EXPECT_NE(tid, ::getpid());
  EXPECT_EQ(line, "thread " + std::to_string(tid) + " (np-worker-1) of process " + std::to_string(::getpid()));
}

TEST(CrashReport, CutsAReportThatDoesNotFitAndSaysSo) {
  ucontext_t uc;
  np_cr_capture(&uc);
  FixedText<200> small;
  EXPECT_FALSE(format_crash_report(fault(SIGSEGV, SEGV_MAPERR, 0x10), &uc, &test_symbolizer(), small));
  EXPECT_LE(small.size(), 199u);
  EXPECT_FALSE(small.truncated()) << "cut by the report, at a piece boundary, not by FixedText";
  EXPECT_TRUE(small.view().starts_with("crashed: SIGSEGV"));
  EXPECT_TRUE(small.view().ends_with("\n[crash report truncated]\n")) << small.view();

  FixedText<16384> large;
  EXPECT_TRUE(format_crash_report(fault(SIGSEGV, SEGV_MAPERR, 0x10), &uc, &test_symbolizer(), large));
  EXPECT_EQ(large.view().find("truncated"), std::string_view::npos);
  EXPECT_TRUE(large.view().ends_with("\n"));
}

TEST(CrashReport, LeavesErrnoAsItWas) {
  ucontext_t uc;
  np_cr_capture(&uc);
  FixedText<16384> t;
  errno = 777;
  format_crash_report(fault(SIGSEGV, SEGV_MAPERR, 0x10), &uc, &test_symbolizer(), t);
  EXPECT_EQ(errno, 777);
}

TEST(CrashReport, AllocatesNothing) {
  const Symbolizer& sym = test_symbolizer();  // loads (allocating) before the guard
  ucontext_t uc;
  np_cr_capture(&uc);
  FixedText<16384> t;
  testing::AllocGuard guard;
  const bool whole = format_crash_report(fault(SIGSEGV, SEGV_MAPERR, 0x10), &uc, &sym, t);
  t.clear();
  format_crash_report(sent(SIGABRT, SI_TKILL, 1), nullptr, &sym, t);
  EXPECT_EQ(guard.stop(), 0u);
  EXPECT_TRUE(whole);
}

// ---------------------------------------------------------------------------
// Real crashes, in a child process, reported by a handler on an alternate
// signal stack the way a program would install it.

const Symbolizer* g_sym = nullptr;
int g_report_fd = -1;
FixedText<16384> g_report;  // static storage, so the alternate stack can stay small
alignas(16) char g_altstack[64 * 1024];

void write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    const ssize_t n = ::write(fd, s.data(), s.size());
    if (n <= 0) return;
    s.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Writes the report and returns. SA_RESETHAND has restored the default
// action, so a fault re-executes and kills the child, and abort() raises
// again: the parent sees the death a crash without a handler would give.
void report_and_return(int, siginfo_t* si, void* ctx) {
  g_report.clear();
  format_crash_report(*si, static_cast<const ucontext_t*>(ctx), g_sym, g_report);
  write_all(g_report_fd, g_report.view());
  stack_t now{};
  ::sigaltstack(nullptr, &now);
  write_all(g_report_fd, (now.ss_flags & SS_ONSTACK) != 0 ? "handler ran on the alternate stack\n"
                                                         : "handler ran on the thread's stack\n");
}

// Under AddressSanitizer this needs nothing special: with its default
// handle_segv=1 ASan installs a SIGSEGV handler at startup and our
// sigaction() replaces it. Only ASAN_OPTIONS=handle_segv=2 ("exclusive")
// keeps the signal for ASan; the crash tests then fail on the child's exit
// status (ASan reports and exits 1) instead of passing silently.
void install_crash_handler(int signo) {
  stack_t ss{};
  ss.ss_sp = g_altstack;
  ss.ss_size = sizeof g_altstack;
  if (::sigaltstack(&ss, nullptr) != 0) ::_exit(10);
  struct sigaction sa {};
  sa.sa_sigaction = report_and_return;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  if (::sigaction(signo, &sa, nullptr) != 0) ::_exit(11);
}

constexpr int kChildSurvived = 12;

struct ChildRun {
  pid_t pid = -1;
  std::string output;           // everything the child wrote to the pipe
  std::optional<int> status;    // waitpid status, if it ended in time
};

// Forks; the child runs `body` with the pipe's write end and must not
// return. The parent reads until EOF and reaps the child, all within
// `limit`; a child still there then is killed and reaped too.
ChildRun run_child(void (*body)(int fd), std::chrono::milliseconds limit = 10s) {
  ChildRun run;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return run;
  }
  run.pid = ::fork();
  if (run.pid == 0) {
    ::close(fds[0]);
    const rlimit no_core{0, 0};  // a crash is what we want; a core file is not
    ::setrlimit(RLIMIT_CORE, &no_core);
    body(fds[1]);
    ::_exit(kChildSurvived);
  }
  ::close(fds[1]);
  if (run.pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    ::close(fds[0]);
    return run;
  }
  const auto deadline = std::chrono::steady_clock::now() + limit;
  const auto left_ms = [&] {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<std::int64_t>(ms.count(), 0));
  };
  for (;;) {
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, left_ms()) <= 0) break;  // timed out (or failed): stop reading
    char buf[4096];
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;  // EOF: the child is gone
    run.output.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  for (;;) {
    int st = 0;
    if (::waitpid(run.pid, &st, WNOHANG) == run.pid) {
      run.status = st;
      break;
    }
    if (left_ms() == 0) {
      ADD_FAILURE() << "child " << run.pid << " still running after " << limit.count() << " ms: killed";
      ::kill(run.pid, SIGKILL);
      ::waitpid(run.pid, &st, 0);  // SIGKILL cannot be caught: this returns
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  return run;
}

void segfault_child(int fd) {
  g_report_fd = fd;
  ::prctl(PR_SET_NAME, "crash-child", 0, 0, 0);
  install_crash_handler(SIGSEGV);
  np_cr_crash_outer(reinterpret_cast<volatile int*>(std::uintptr_t{0x10}));
  ::_exit(kChildSurvived);  // (also keeps the call above from being a tail call)
}

TEST(CrashReport, ReportsARealSegfaultFromAHandlerOnAnAlternateStack) {
  g_sym = &test_symbolizer();  // loaded before the crash, as a program would at startup
  const ChildRun run = run_child(segfault_child);
  ASSERT_TRUE(run.status.has_value());
  EXPECT_TRUE(WIFSIGNALED(*run.status) && WTERMSIG(*run.status) == SIGSEGV)
      << "status " << *run.status << "\n" << run.output;

  const auto lines = lines_of(run.output);
  ASSERT_GE(lines.size(), 9u) << run.output;
  const std::string pid = std::to_string(run.pid);
  EXPECT_EQ(lines[0], "crashed: SIGSEGV (SEGV_MAPERR: address not mapped) at address 0x0000000000000010");
  EXPECT_EQ(lines[1], "thread " + pid + " (crash-child) of process " + pid);
  EXPECT_TRUE(is_register_line_1(lines[2])) << lines[2];
  // x86 exception 14 is a page fault; error code 4: a user-mode read of a
  // page that is not present.
  EXPECT_TRUE(is_register_line_2(lines[3])) << lines[3];
  EXPECT_TRUE(lines[3].ends_with(" trapno 14 err 0x4")) << lines[3];
  EXPECT_EQ(lines[4], "backtrace:");
  // Frame 0 is the faulting instruction itself, at rip.
  const FrameLine f0 = named_frame(lines[5], 0);
  EXPECT_EQ(f0.function, "np_cr_crash_inner");
  EXPECT_EQ(f0.object, "console_test");
  EXPECT_EQ(lines[5].substr(3, 18), lines[2].substr(4, 18)) << "frame 0 is not at rip";
  // np_cr_crash_inner is a leaf without a frame: its caller comes from RSP.
  const FrameLine f1 = named_frame(lines[6], 1);
  EXPECT_EQ(f1.function, "np_cr_crash_outer");
  EXPECT_EQ(f1.object, "console_test");
  EXPECT_TRUE(contains(named_frame(lines[7], 2).function, "segfault_child")) << lines[7];
  EXPECT_EQ(lines.back(), "handler ran on the alternate stack");
}

void libc_crash_child(int fd) {
  g_report_fd = fd;
  ::prctl(PR_SET_NAME, "libc-child", 0, 0, 0);
  install_crash_handler(SIGSEGV);
  np_cr_libc_caller(reinterpret_cast<const char*>(std::uintptr_t{0x10}));
  ::_exit(kChildSurvived);
}

TEST(CrashReport, ReportsACrashInsideLibcWithTheCallerThatPassedTheBadPointer) {
  g_sym = &test_symbolizer();
  const ChildRun run = run_child(libc_crash_child);
  ASSERT_TRUE(run.status.has_value());
  EXPECT_TRUE(WIFSIGNALED(*run.status) && WTERMSIG(*run.status) == SIGSEGV)
      << "status " << *run.status << "\n" << run.output;

  const auto lines = lines_of(run.output);
  ASSERT_GE(lines.size(), 8u) << run.output;
  EXPECT_EQ(lines[0], "crashed: SIGSEGV (SEGV_MAPERR: address not mapped) at address 0x0000000000000010");
  EXPECT_EQ(lines[4], "backtrace:");
  // Frame 0 is in libc, named or not (a stripped libc names only its exports).
  EXPECT_TRUE(lines[5].starts_with("#0 0x")) << lines[5];
  EXPECT_NE(lines[5].find("libc.so.6"), std::string::npos) << lines[5];
  // libc's function has no frame: its caller is found from the return
  // address at RSP, checked against the call through the PLT.
  const FrameLine f1 = named_frame(lines[6], 1);
  EXPECT_EQ(f1.function, "np_cr_libc_caller");
  EXPECT_EQ(f1.object, "console_test");
  EXPECT_TRUE(contains(named_frame(lines[7], 2).function, "libc_crash_child")) << lines[7];
}

void abort_child(int fd) {
  g_report_fd = fd;
  ::prctl(PR_SET_NAME, "abort-child", 0, 0, 0);
  install_crash_handler(SIGABRT);
  std::abort();
}

TEST(CrashReport, ReportsAbortAsSentByTheProcessWithoutAnAddress) {
  g_sym = &test_symbolizer();
  const ChildRun run = run_child(abort_child);
  ASSERT_TRUE(run.status.has_value());
  EXPECT_TRUE(WIFSIGNALED(*run.status) && WTERMSIG(*run.status) == SIGABRT)
      << "status " << *run.status << "\n" << run.output;

  const auto lines = lines_of(run.output);
  ASSERT_GE(lines.size(), 7u) << run.output;
  const std::string pid = std::to_string(run.pid);
  // glibc's abort() raises SIGABRT with tgkill on its own thread.
  EXPECT_EQ(lines[0], "crashed: SIGABRT (SI_TKILL: tkill or tgkill, sent by pid " + pid + ")");
  EXPECT_EQ(run.output.find(" at address "), std::string::npos);
  EXPECT_EQ(lines[1], "thread " + pid + " (abort-child) of process " + pid);
  EXPECT_TRUE(is_register_line_1(lines[2])) << lines[2];
  EXPECT_EQ(lines[4], "backtrace:");
  // The signal arrived inside libc (its frames have no frame pointers, so
  // what follows frame 0 is not asserted).
  EXPECT_TRUE(lines[5].starts_with("#0 0x")) << lines[5];
  EXPECT_NE(lines[5].find("libc.so.6"), std::string::npos) << lines[5];
  EXPECT_EQ(lines.back(), "handler ran on the alternate stack");
}

}  // namespace
}  // namespace np::console
