// Crash report text (see crash_report.h).
#include "netpoll/console/crash_report.h"

#include <sys/prctl.h>
#include <unistd.h>

#include <cstdint>

#include "netpoll/base/errno_saver.h"
#include "netpoll/console/backtrace.h"

namespace np::console {
namespace {

struct SignalName {
  int signo;
  const char* name;
};

// The signals a crash handler is installed for, and the others whose
// default action ends a process. Anything else prints as "signal N".
constexpr SignalName kSignals[] = {
    {SIGSEGV, "SIGSEGV"}, {SIGBUS, "SIGBUS"},   {SIGILL, "SIGILL"},   {SIGFPE, "SIGFPE"},   {SIGABRT, "SIGABRT"},
    {SIGTRAP, "SIGTRAP"}, {SIGSYS, "SIGSYS"},   {SIGQUIT, "SIGQUIT"}, {SIGTERM, "SIGTERM"}, {SIGINT, "SIGINT"},
    {SIGHUP, "SIGHUP"},   {SIGPIPE, "SIGPIPE"}, {SIGKILL, "SIGKILL"}, {SIGALRM, "SIGALRM"}, {SIGUSR1, "SIGUSR1"},
    {SIGUSR2, "SIGUSR2"}, {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"}, {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"},
    {SIGSTKFLT, "SIGSTKFLT"}, {SIGPWR, "SIGPWR"}, {SIGIO, "SIGIO"},
};

// SIGSYS codes: the kernel's <asm-generic/siginfo.h> defines them, but it
// cannot be included next to glibc's <signal.h>.
constexpr int kSysSeccomp = 1;
constexpr int kSysUserDispatch = 2;

struct CodeName {
  int signo;  // 0: the code means the same for every signal (SI_*)
  int code;
  const char* name;
  const char* meaning;
};

// si_code values, from <bits/siginfo-consts.h> and sigaction(2). Positive
// codes other than SI_KERNEL are per signal: SEGV_MAPERR, BUS_ADRALN and
// ILL_ILLOPC are all 1.
constexpr CodeName kCodes[] = {
    {SIGSEGV, SEGV_MAPERR, "SEGV_MAPERR", "address not mapped"},
    {SIGSEGV, SEGV_ACCERR, "SEGV_ACCERR", "invalid permissions for mapped object"},
    {SIGSEGV, SEGV_BNDERR, "SEGV_BNDERR", "failed address bound checks"},
    {SIGSEGV, SEGV_PKUERR, "SEGV_PKUERR", "access denied by memory protection keys"},
    // x86-64 raises a general-protection fault, which carries no address, for
    // an access through a non-canonical pointer (0xdeadbeefdeadbeef).
    {SIGSEGV, SI_KERNEL, "SI_KERNEL", "general protection fault, address not known"},
    {SIGBUS, BUS_ADRALN, "BUS_ADRALN", "invalid address alignment"},
    {SIGBUS, BUS_ADRERR, "BUS_ADRERR", "nonexistent physical address"},
    {SIGBUS, BUS_OBJERR, "BUS_OBJERR", "object-specific hardware error"},
    {SIGBUS, BUS_MCEERR_AR, "BUS_MCEERR_AR", "hardware memory error consumed on a machine check"},
    {SIGBUS, BUS_MCEERR_AO, "BUS_MCEERR_AO", "hardware memory error detected, action optional"},
    {SIGILL, ILL_ILLOPC, "ILL_ILLOPC", "illegal opcode"},
    {SIGILL, ILL_ILLOPN, "ILL_ILLOPN", "illegal operand"},
    {SIGILL, ILL_ILLADR, "ILL_ILLADR", "illegal addressing mode"},
    {SIGILL, ILL_ILLTRP, "ILL_ILLTRP", "illegal trap"},
    {SIGILL, ILL_PRVOPC, "ILL_PRVOPC", "privileged opcode"},
    {SIGILL, ILL_PRVREG, "ILL_PRVREG", "privileged register"},
    {SIGILL, ILL_COPROC, "ILL_COPROC", "coprocessor error"},
    {SIGILL, ILL_BADSTK, "ILL_BADSTK", "internal stack error"},
    {SIGFPE, FPE_INTDIV, "FPE_INTDIV", "integer divide by zero"},
    {SIGFPE, FPE_INTOVF, "FPE_INTOVF", "integer overflow"},
    {SIGFPE, FPE_FLTDIV, "FPE_FLTDIV", "floating-point divide by zero"},
    {SIGFPE, FPE_FLTOVF, "FPE_FLTOVF", "floating-point overflow"},
    {SIGFPE, FPE_FLTUND, "FPE_FLTUND", "floating-point underflow"},
    {SIGFPE, FPE_FLTRES, "FPE_FLTRES", "floating-point inexact result"},
    {SIGFPE, FPE_FLTINV, "FPE_FLTINV", "floating-point invalid operation"},
    {SIGFPE, FPE_FLTSUB, "FPE_FLTSUB", "subscript out of range"},
    {SIGTRAP, TRAP_BRKPT, "TRAP_BRKPT", "process breakpoint"},
    {SIGTRAP, TRAP_TRACE, "TRAP_TRACE", "process trace trap"},
    {SIGTRAP, TRAP_BRANCH, "TRAP_BRANCH", "process taken branch trap"},
    {SIGTRAP, TRAP_HWBKPT, "TRAP_HWBKPT", "hardware breakpoint or watchpoint"},
    {SIGSYS, kSysSeccomp, "SYS_SECCOMP", "system call refused by seccomp"},
    {SIGSYS, kSysUserDispatch, "SYS_USER_DISPATCH", "system call caught by syscall user dispatch"},
    {0, SI_USER, "SI_USER", "kill"},
    {0, SI_KERNEL, "SI_KERNEL", "sent by the kernel"},
    {0, SI_QUEUE, "SI_QUEUE", "sigqueue"},
    {0, SI_TIMER, "SI_TIMER", "POSIX timer expired"},
    {0, SI_MESGQ, "SI_MESGQ", "POSIX message queue state changed"},
    {0, SI_ASYNCIO, "SI_ASYNCIO", "asynchronous I/O completed"},
    {0, SI_SIGIO, "SI_SIGIO", "queued SIGIO"},
    {0, SI_TKILL, "SI_TKILL", "tkill or tgkill"},
};

const CodeName* code_name(int signo, int code) noexcept {
  for (const CodeName& c : kCodes) {
    if (c.signo == signo && c.code == code) return &c;  // a signal's own meaning first
  }
  for (const CodeName& c : kCodes) {
    if (c.signo == 0 && c.code == code) return &c;
  }
  return nullptr;
}

// A hardware fault's code: the kernel filled si_addr (sigaction(2)).
bool has_fault_address(const siginfo_t& si) noexcept {
  const bool fault_signal =
      si.si_signo == SIGSEGV || si.si_signo == SIGBUS || si.si_signo == SIGILL || si.si_signo == SIGFPE;
  return fault_signal && si.si_code > 0 && si.si_code != SI_KERNEL;
}

// Codes with which a process sent the signal: si_pid and si_uid are valid.
bool sent_by_process(const siginfo_t& si) noexcept {
  return si.si_code == SI_USER || si.si_code == SI_TKILL || si.si_code == SI_QUEUE;
}

// Hands text and numbers to the sink as they come: no line buffer, so no
// line length limit (mangled names can be long).
class Writer {
 public:
  explicit Writer(CrashTextSink sink) noexcept : sink_(sink) {}

  Writer& text(std::string_view s) noexcept {
    if (!s.empty()) sink_(s);
    return *this;
  }
  Writer& dec(std::int64_t v) noexcept {
    FixedText<24> t;
    t.append_int(v);
    return text(t.view());
  }
  // "0x" and all 16 digits: addresses and registers line up.
  Writer& addr(std::uint64_t v) noexcept {
    FixedText<24> t;
    t.append("0x").append_hex(v, 16);
    return text(t.view());
  }
  // "0x" and the digits needed: offsets.
  Writer& hex(std::uint64_t v) noexcept {
    FixedText<24> t;
    t.append("0x").append_hex(v);
    return text(t.view());
  }

 private:
  CrashTextSink sink_;
};

}  // namespace

const char* signal_name(int signo) noexcept {
  for (const SignalName& s : kSignals) {
    if (s.signo == signo) return s.name;
  }
  return nullptr;
}

namespace {

void write_first_line(Writer& w, const siginfo_t& si) noexcept {
  w.text("crashed: ");
  if (const char* name = signal_name(si.si_signo)) {
    w.text(name);
  } else {
    w.text("signal ").dec(si.si_signo);
  }
  w.text(" (");
  if (const CodeName* c = code_name(si.si_signo, si.si_code)) {
    w.text(c->name).text(": ").text(c->meaning);
  } else {
    w.text("si_code ").dec(si.si_code);
  }
  if (sent_by_process(si)) w.text(", sent by pid ").dec(si.si_pid);
  if (si.si_signo == SIGSYS && si.si_code == kSysSeccomp) w.text(", system call ").dec(si.si_syscall);
  w.text(")");
  if (has_fault_address(si)) w.text(" at address ").addr(reinterpret_cast<std::uintptr_t>(si.si_addr));
  w.text("\n");
}

void write_thread_line(Writer& w) noexcept {
  w.text("thread ").dec(::gettid());
  // The kernel's comm, at most 15 characters and a NUL (prctl(2)).
  char name[16] = {};
  if (::prctl(PR_GET_NAME, name, 0, 0, 0) == 0) {
    name[sizeof name - 1] = '\0';
    w.text(" (").text(name).text(")");
  }
  w.text(" of process ").dec(::getpid()).text("\n");
}

struct Reg {
  const char* name;
  int index;
};

// x86-64 general registers as the kernel saved them (<sys/ucontext.h>).
constexpr Reg kRegLine1[] = {{"rip", REG_RIP}, {"rsp", REG_RSP}, {"rbp", REG_RBP}, {"rax", REG_RAX}, {"rbx", REG_RBX},
                             {"rcx", REG_RCX}, {"rdx", REG_RDX}, {"rsi", REG_RSI}, {"rdi", REG_RDI}};
constexpr Reg kRegLine2[] = {{"r8", REG_R8},   {"r9", REG_R9},   {"r10", REG_R10}, {"r11", REG_R11},
                             {"r12", REG_R12}, {"r13", REG_R13}, {"r14", REG_R14}, {"r15", REG_R15},
                             {"eflags", REG_EFL}};

void write_registers(Writer& w, const ucontext_t& uc, bool trap) noexcept {
  const auto& g = uc.uc_mcontext.gregs;
  const auto line = [&](const auto& regs) {
    const char* sep = "";
    for (const Reg& r : regs) {
      w.text(sep).text(r.name).text(" ").addr(static_cast<std::uint64_t>(g[r.index]));
      sep = " ";
    }
  };
  line(kRegLine1);
  w.text("\n");
  line(kRegLine2);
  // The CPU's exception number and error code (for a page fault: bit 0 page
  // present, bit 1 write, bit 2 user mode, bit 4 instruction fetch).
  if (trap) w.text(" trapno ").dec(g[REG_TRAPNO]).text(" err ").hex(static_cast<std::uint64_t>(g[REG_ERR]));
  w.text("\n");
}

void write_frame(Writer& w, std::size_t i, std::uintptr_t pc, bool return_address, const Symbolizer* sym) noexcept {
  w.text("#").dec(static_cast<std::int64_t>(i)).text(" ").addr(pc);
  if (sym != nullptr) {
    // A return address follows its call; the call may have been the last
    // instruction of its function (a noreturn callee), so the byte before it
    // is what belongs to the caller.
    const std::uintptr_t adjust = return_address && pc != 0 ? 1 : 0;
    const Symbol s = sym->lookup(pc - adjust);
    if (s.function != nullptr) {
      w.text(" ").text(s.function).text("+").hex(s.offset + adjust).text(" (").text(s.object).text(")");
    } else if (s.object != nullptr) {
      w.text(" ?? (").text(s.object).text("+").hex(pc - s.base).text(")");
    }
  }
  w.text("\n");
}

}  // namespace

void format_crash_report(const siginfo_t& si, const ucontext_t* uc, const Symbolizer* sym,
                         CrashTextSink sink) noexcept {
  format_crash_report(si, uc, sym, nullptr, sink);
}

void format_crash_report(const siginfo_t& si, const ucontext_t* uc, const Symbolizer* sym, const CfiIndex* cfi,
                         CrashTextSink sink) noexcept {
  ErrnoSaver keep_errno;
  Writer w(sink);
  write_first_line(w, si);
  write_thread_line(w);

  if (uc != nullptr) {
    write_registers(w, *uc, true);
    w.text("backtrace:\n");
    format_backtrace(*uc, sym, cfi, sink);
    return;
  }
  std::uintptr_t frames[kCrashReportFrames];
  const std::size_t n = backtrace_here(frames);
  w.text("registers: not available (no signal context)\n");
  w.text("backtrace (of the code that wrote this report):\n");
  // All return addresses.
  for (std::size_t i = 0; i < n; ++i) write_frame(w, i, frames[i], true, sym);
}

void format_backtrace(const ucontext_t& uc, const Symbolizer* sym, const CfiIndex* cfi, CrashTextSink sink) noexcept {
  ErrnoSaver keep_errno;
  Writer w(sink);
  std::uintptr_t frames[kCrashReportFrames];
  std::size_t n = backtrace_from_context(uc, frames);
  if (cfi != nullptr && cfi_index_intact(*cfi)) {
    std::uintptr_t from_cfi[kCrashReportFrames];
    const std::size_t m = cfi_backtrace(*cfi, uc, from_cfi);
    if (m >= n) {
      for (std::size_t i = 0; i < m; ++i) frames[i] = from_cfi[i];
      n = m;
    }
  }
  // Frame 0 is the interrupted instruction itself, the others return
  // addresses.
  for (std::size_t i = 0; i < n; ++i) write_frame(w, i, frames[i], i > 0, sym);
}

void format_signal_line(const siginfo_t& si, CrashTextSink sink) noexcept {
  Writer w(sink);
  write_first_line(w, si);
}

void format_registers(const ucontext_t& uc, bool trap, CrashTextSink sink) noexcept {
  Writer w(sink);
  write_registers(w, uc, trap);
}

}  // namespace np::console
