// The witness's crash records (see report.h).
#include "netpoll/witness/report.h"

#include <cxxabi.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <sys/uio.h>
#include <ucontext.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <future>
#include <mutex>
#include <thread>

#include "netpoll/base/text.h"
#include "netpoll/console/crash_report.h"

namespace np::witness {
namespace {

std::string hex(std::uint64_t v, int digits = 0) {
  char buf[24];
  if (digits > 0) {
    std::snprintf(buf, sizeof buf, "0x%0*llx", digits, static_cast<unsigned long long>(v));
  } else {
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  }
  return buf;
}

std::string demangle(const char* name) {
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> out(abi::__cxa_demangle(name, nullptr, nullptr, &status), &std::free);
  return status == 0 && out ? std::string(out.get()) : std::string(name);
}

std::string basename_of(const char* path) {
  const std::string p = path != nullptr ? path : "";
  const auto slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

std::string thread_name(pid_t pid, pid_t tid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

}  // namespace

// libdwfl over one process: its modules (reported from /proc/PID/maps, no
// ptrace needed) and, once attached, its threads. Memory and registers are
// read with ptrace by the calling thread, which must be the tracer.
class ProcessDwarf {
 public:
  ProcessDwarf() {
    static char* debuginfo_path = nullptr;  // libdwfl's default: .debug, /usr/lib/debug, build-id
    static const Dwfl_Callbacks callbacks = {
        .find_elf = dwfl_linux_proc_find_elf,
        .find_debuginfo = dwfl_standard_find_debuginfo,
        .section_address = nullptr,
        .debuginfo_path = &debuginfo_path,
    };
    dwfl_ = dwfl_begin(&callbacks);
    if (dwfl_ == nullptr) error_ = dwfl_errmsg(-1);
  }
  ~ProcessDwarf() {
    if (dwfl_ != nullptr) dwfl_end(dwfl_);
  }
  ProcessDwarf(const ProcessDwarf&) = delete;
  ProcessDwarf& operator=(const ProcessDwarf&) = delete;

  // The process's modules as mapped now; modules seen before are kept, with
  // whatever debug information was loaded for them.
  bool report(pid_t pid) {
    if (dwfl_ == nullptr) return false;
    dwfl_report_begin_add(dwfl_);
    const int rc = dwfl_linux_proc_report(dwfl_, pid);
    dwfl_report_end(dwfl_, nullptr, nullptr);
    if (rc != 0) error_ = rc > 0 ? std::string("reading /proc maps: ") + std::strerror(rc) : dwfl_errmsg(-1);
    return rc == 0;
  }

  // The address of the data symbol `name` in any module, or 0.
  Dwarf_Addr symbol(const char* name) {
    if (dwfl_ == nullptr) return 0;
    struct Find {
      const char* name;
      Dwarf_Addr addr = 0;
    } find{name};
    dwfl_getmodules(
        dwfl_,
        [](Dwfl_Module* m, void**, const char*, Dwarf_Addr, void* arg) -> int {
          auto& f = *static_cast<Find*>(arg);
          const int n = dwfl_module_getsymtab(m);
          for (int i = 0; i < n; ++i) {
            GElf_Sym sym{};
            GElf_Addr addr = 0;
            const char* sname = dwfl_module_getsym_info(m, i, &sym, &addr, nullptr, nullptr, nullptr);
            if (sname != nullptr && GELF_ST_TYPE(sym.st_info) == STT_OBJECT && std::strcmp(sname, f.name) == 0) {
              f.addr = addr;
              return DWARF_CB_ABORT;
            }
          }
          return DWARF_CB_OK;
        },
        &find, 0);
    return find.addr;
  }

  // For unwinding: every thread is already stopped by us, so libdwfl must
  // not attach itself. Once per process.
  bool attach(pid_t pid) {
    if (dwfl_ == nullptr) return false;
    if (const int rc = dwfl_linux_proc_attach(dwfl_, pid, true); rc != 0) {
      error_ = rc > 0 ? std::strerror(rc) : dwfl_errmsg(-1);
      return false;
    }
    ok_ = true;
    return true;
  }

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }

  // The frames of `tid`, one line each, at most `max` lines; a run of
  // frames at one pc (a recursion) is one line and a count. `why` gets the
  // reason a walk ended before it had any frame.
  std::vector<std::string> frames(pid_t tid, std::size_t max, std::string& why, DebugInfoCache* cache) {
    struct Walk {
      ProcessDwarf* self;
      DebugInfoCache* cache;
      std::size_t max;
      std::size_t walked = 0;
      Dwarf_Addr last_pc = 0;
      std::size_t repeats = 0;
      std::vector<std::string> lines;
      void close_run() {
        if (repeats == 0) return;
        lines.push_back("   (the frame above " + std::to_string(repeats) + " more times)");
        repeats = 0;
      }
    } walk{this, cache, max, 0, 0, 0, {}};
    const int rc = dwfl_getthread_frames(
        dwfl_, tid,
        [](Dwfl_Frame* frame, void* arg) -> int {
          auto& w = *static_cast<Walk*>(arg);
          Dwarf_Addr pc = 0;
          bool activation = false;
          if (!dwfl_frame_pc(frame, &pc, &activation)) return DWARF_CB_ABORT;
          const std::size_t index = w.walked++;
          if (index > 0 && pc == w.last_pc) {
            ++w.repeats;
          } else {
            w.close_run();
            w.lines.push_back(w.self->describe(index, pc, activation, w.cache));
          }
          w.last_pc = pc;
          // A deep recursion is walked a little further than it is shown.
          return w.lines.size() >= w.max || w.walked >= w.max * 64 ? DWARF_CB_ABORT : DWARF_CB_OK;
        },
        &walk);
    walk.close_run();
    // The walk ends with an error at the outermost frame too (no return
    // address): only an empty trace says something went wrong.
    if (rc != 0 && walk.lines.empty()) why = dwfl_errmsg(-1);
    return walk.lines;
  }

 private:
  std::string describe(std::size_t i, Dwarf_Addr pc, bool activation, DebugInfoCache* cache) {
    // A return address follows its call; the byte before it belongs to the
    // caller even when the call ended the function (noreturn callees).
    const Dwarf_Addr at = activation || pc == 0 ? pc : pc - 1;
    std::string line = "#" + std::to_string(i) + " " + hex(pc, 16);
    Dwfl_Module* m = dwfl_addrmodule(dwfl_, at);
    if (m == nullptr) return line;
    Dwarf_Addr start = 0;
    const char* mname = dwfl_module_info(m, nullptr, &start, nullptr, nullptr, nullptr, nullptr, nullptr);
    GElf_Off offset = 0;
    GElf_Sym sym{};
    const char* fn = dwfl_module_addrinfo(m, at, &offset, &sym, nullptr, nullptr, nullptr);
    const std::string object = basename_of(mname);
    if (fn != nullptr) {
      line += " " + demangle(fn) + "+" + hex(offset + (pc - at)) + " (" + object + ")";
    } else {
      line += " ?? (" + object + "+" + hex(pc - start) + ")";
    }
    // Source lines from the file's information loaded ahead of time, when
    // the cache has it (the address relative to the file's own), else
    // loaded now.
    Dwarf_Addr bias = 0;
    std::string where;
    if (cache != nullptr && mname != nullptr && dwfl_module_getelf(m, &bias) != nullptr) {
      where = cache->source_line(mname, at - bias);
    } else if (Dwfl_Line* src = dwfl_module_getsrc(m, at)) {
      int lineno = 0;
      if (const char* file = dwfl_lineinfo(src, nullptr, &lineno, nullptr, nullptr, nullptr); file != nullptr)
        where = std::string(file) + ":" + std::to_string(lineno);
    }
    if (!where.empty()) line += " at " + where;
    return line;
  }

  Dwfl* dwfl_ = nullptr;
  bool ok_ = false;
  std::string error_;
};

namespace {

// user_regs_struct (ptrace) as the ucontext gregs the in-process report
// prints, so both reports show registers alike.
ucontext_t as_context(const user_regs_struct& r) {
  ucontext_t uc{};
  auto& g = uc.uc_mcontext.gregs;
  g[REG_RIP] = static_cast<greg_t>(r.rip);
  g[REG_RSP] = static_cast<greg_t>(r.rsp);
  g[REG_RBP] = static_cast<greg_t>(r.rbp);
  g[REG_RAX] = static_cast<greg_t>(r.rax);
  g[REG_RBX] = static_cast<greg_t>(r.rbx);
  g[REG_RCX] = static_cast<greg_t>(r.rcx);
  g[REG_RDX] = static_cast<greg_t>(r.rdx);
  g[REG_RSI] = static_cast<greg_t>(r.rsi);
  g[REG_RDI] = static_cast<greg_t>(r.rdi);
  g[REG_R8] = static_cast<greg_t>(r.r8);
  g[REG_R9] = static_cast<greg_t>(r.r9);
  g[REG_R10] = static_cast<greg_t>(r.r10);
  g[REG_R11] = static_cast<greg_t>(r.r11);
  g[REG_R12] = static_cast<greg_t>(r.r12);
  g[REG_R13] = static_cast<greg_t>(r.r13);
  g[REG_R14] = static_cast<greg_t>(r.r14);
  g[REG_R15] = static_cast<greg_t>(r.r15);
  g[REG_EFL] = static_cast<greg_t>(r.eflags);
  return uc;
}

}  // namespace

// One ELF file's debug information, read offline: independent of where a
// process maps the file, so it can be loaded before any process has.
struct DebugInfoCache::File {
  std::promise<void> loaded;
  std::shared_future<void> ready = loaded.get_future().share();
  std::mutex mutex;  // one lookup at a time (a Dwfl is not thread-safe)
  Dwfl* dwfl = nullptr;
  Dwfl_Module* module = nullptr;
  Dwarf_Addr bias = 0;

  ~File() {
    if (dwfl != nullptr) dwfl_end(dwfl);
  }
  void load(const std::string& path) {
    static char* debuginfo_path = nullptr;
    static const Dwfl_Callbacks callbacks = {
        .find_elf = dwfl_build_id_find_elf,
        .find_debuginfo = dwfl_standard_find_debuginfo,
        .section_address = dwfl_offline_section_address,
        .debuginfo_path = &debuginfo_path,
    };
    dwfl = dwfl_begin(&callbacks);
    if (dwfl == nullptr) return;
    module = dwfl_report_offline(dwfl, path.c_str(), path.c_str(), -1);
    dwfl_report_end(dwfl, nullptr, nullptr);
    if (module == nullptr || dwfl_module_getelf(module, &bias) == nullptr) {
      module = nullptr;
      return;
    }
    // What naming a line needs: the DWARF (decompressed, the separate debug
    // file found by build-id) and its address ranges.
    Dwarf_Addr dwarf_bias = 0;
    if (Dwarf* dw = dwfl_module_getdwarf(module, &dwarf_bias)) {
      Dwarf_Aranges* ar = nullptr;
      std::size_t n = 0;
      static_cast<void>(dwarf_getaranges(dw, &ar, &n));
    }
  }
};

DebugInfoCache::DebugInfoCache() = default;

DebugInfoCache::~DebugInfoCache() {
  std::lock_guard lock(mutex_);
  for (auto& t : workers_) t.join();
}

void DebugInfoCache::warm(const std::string& path) {
  std::shared_ptr<File> f;
  {
    std::lock_guard lock(mutex_);
    if (files_.count(path) != 0) return;
    f = std::make_shared<File>();
    files_[path] = f;
  }
  std::lock_guard lock(mutex_);
  workers_.emplace_back([f, path] {
    f->load(path);
    f->loaded.set_value();
  });
}

void DebugInfoCache::warm_own_libraries() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  std::vector<std::string> paths;
  while (std::getline(maps, line)) {
    const auto slash = line.find('/');
    if (slash == std::string::npos || line.find(" r-xp ") == std::string::npos) continue;
    const std::string path = line.substr(slash);
    if (path.find(".so") != std::string::npos) paths.push_back(path);
  }
  for (const auto& p : paths) warm(p);
}

std::string DebugInfoCache::source_line(const std::string& path, Dwarf_Addr file_address) {
  std::shared_ptr<File> f;
  {
    std::lock_guard lock(mutex_);
    const auto it = files_.find(path);
    if (it != files_.end()) f = it->second;
  }
  if (f == nullptr) {
    warm(path);  // loaded now, kept for the next thread's frames
    std::lock_guard lock(mutex_);
    f = files_[path];
  }
  f->ready.wait();
  std::lock_guard one_at_a_time(f->mutex);
  if (f->module == nullptr) return "";
  Dwfl_Line* src = dwfl_module_getsrc(f->module, file_address + f->bias);
  int lineno = 0;
  const char* file = src != nullptr ? dwfl_lineinfo(src, nullptr, &lineno, nullptr, nullptr, nullptr) : nullptr;
  return file != nullptr ? std::string(file) + ":" + std::to_string(lineno) : "";
}

std::string unflushed_output(pid_t pid, int fd) {
  if (fd != 1 && fd != 2) return "";
  ProcessDwarf dwfl;
  if (!dwfl.report(pid)) return "";
  const Dwarf_Addr file = dwfl.symbol(fd == 1 ? "_IO_2_1_stdout_" : "_IO_2_1_stderr_");
  if (file == 0) return "";
  // glibc's FILE on x86-64 (libio.h): int _flags, then the read pointers,
  // then _IO_write_base and _IO_write_ptr: the bytes between them are
  // written by the program and not yet flushed.
  struct {
    std::int32_t flags;
    std::int32_t pad;
    std::uint64_t read_ptr, read_end, read_base, write_base, write_ptr;
  } f{};
  iovec local{&f, sizeof f};
  iovec remote{reinterpret_cast<void*>(file), sizeof f};
  if (::process_vm_readv(pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(sizeof f)) return "";
  constexpr std::uint32_t kMagicMask = 0xFFFF0000u, kMagic = 0xFBAD0000u;  // _IO_MAGIC
  if ((static_cast<std::uint32_t>(f.flags) & kMagicMask) != kMagic) return "";
  if (f.write_ptr <= f.write_base || f.write_ptr - f.write_base > (1u << 20)) return "";
  std::string out(f.write_ptr - f.write_base, '\0');
  iovec l2{out.data(), out.size()};
  iovec r2{reinterpret_cast<void*>(f.write_base), out.size()};
  if (::process_vm_readv(pid, &l2, 1, &r2, 1, 0) != static_cast<ssize_t>(out.size())) return "";
  return out;
}

std::vector<std::string> crash_records(const CrashStop& stop, ReportLimits limits, DebugInfoCache* cache) {
  std::vector<std::string> records;
  std::string first;
  const auto sink = [&](std::string_view piece) { first.append(piece); };
  console::format_signal_line(stop.info, sink);
  first += "thread " + std::to_string(stop.tid);
  if (const std::string name = thread_name(stop.pid, stop.tid); !name.empty()) first += " (" + name + ")";
  first += " of process " + std::to_string(stop.pid) + "\n";
  console::format_registers(as_context(stop.regs), false, sink);

  ProcessDwarf dwfl;
  dwfl.report(stop.pid);
  dwfl.attach(stop.pid);
  std::string why;
  if (dwfl.ok()) {
    const auto lines = dwfl.frames(stop.tid, limits.frames, why, cache);
    first += "backtrace:\n";
    for (const auto& l : lines) first += l + "\n";
    if (!why.empty()) first += "(no backtrace: " + why + ")\n";
  } else {
    first += "(no backtrace: " + dwfl.error() + ")\n";
  }
  first += "reported by netpoll run from outside the process (" + std::to_string(stop.threads.size()) +
           (stop.threads.size() == 1 ? " thread" : " threads") + " stopped";
  if (!stop.not_stopped.empty()) first += ", " + std::to_string(stop.not_stopped.size()) + " did not stop in time";
  first += ")\n";
  records.push_back(std::move(first));

  std::size_t shown = 0;
  for (const pid_t t : stop.threads) {
    if (t == stop.tid) continue;
    if (shown == limits.threads) {
      records.push_back(std::to_string(stop.threads.size() - 1 - shown) + " more threads of process " +
                        std::to_string(stop.pid) + " not shown\n");
      break;
    }
    ++shown;
    std::string text = "thread " + std::to_string(t);
    if (const std::string name = thread_name(stop.pid, t); !name.empty()) text += " (" + name + ")";
    text += " of process " + std::to_string(stop.pid) + ", at the crash of thread " + std::to_string(stop.tid) + "\n";
    if (dwfl.ok()) {
      std::string thread_why;
      for (const auto& l : dwfl.frames(t, limits.frames, thread_why, cache)) text += l + "\n";
      if (!thread_why.empty()) text += "(no backtrace: " + thread_why + ")\n";
    }
    records.push_back(std::move(text));
  }
  return records;
}

}  // namespace np::witness
