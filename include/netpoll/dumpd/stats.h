// netpoll dumpd's statistics: what the dumps did, every datagram refused
// by reason, and every failure of the server's own I/O.
//
// Three structs of Counters, each with its table (base/counter_table.h),
// so the text and JSON reports cannot leave one out. The server's thread
// bumps them; any thread may read them (the command's main thread prints
// them at an interval, on SIGUSR1 and at exit).
#pragma once

#include <string>

#include "netpoll/base/counter.h"
#include "netpoll/base/counter_table.h"
#include "netpoll/dumpd/session.h"

namespace np::dumpd {

struct DumpCounters {
  Counter sessions;        // heralds that opened a session
  Counter complete;        // dumps kept complete (.core)
  Counter partial;         // dumps kept partial (.core.partial)
  Counter empty;           // sessions that ended partial before any DATA: nothing kept
  Counter bytes;           // payload bytes written
  Counter packets;         // DATA and FINISHED messages accepted
  Counter acks;            // acks sent (those the socket refused also count in acks_failed)
  Counter duplicates;      // messages seen before (their ack was lost), acked again
  Counter out_of_window;   // messages older than the duplicate window, written and acked again
  Counter heralds_resent;  // heralds answered again from their session's port
  Counter exec_run;        // --exec scripts started
  Counter exec_failed;     // --exec scripts that could not start or exited non-zero
};

inline constexpr CounterName<DumpCounters> kDumpCounters[] = {
    {&DumpCounters::sessions, "sessions", "sessions"},
    {&DumpCounters::complete, "complete", "complete"},
    {&DumpCounters::partial, "partial", "partial"},
    {&DumpCounters::empty, "empty", "empty"},
    {&DumpCounters::bytes, "bytes", "bytes"},
    {&DumpCounters::packets, "packets", "packets"},
    {&DumpCounters::acks, "acks", "acks"},
    {&DumpCounters::duplicates, "duplicates", "duplicates"},
    {&DumpCounters::out_of_window, "out_of_window", "out of window"},
    {&DumpCounters::heralds_resent, "heralds_resent", "heralds answered again"},
    {&DumpCounters::exec_run, "exec_run", "exec run"},
    {&DumpCounters::exec_failed, "exec_failed", "exec failed"},
};
static_assert(names_every_counter(kDumpCounters));

// One counter per Refusal (session.h), and what the socket cut.
struct RefusalCounters {
  Counter truncated;  // datagrams larger than the receive buffer
  Counter bad_length;
  Counter stray_ack;
  Counter unknown_type;
  Counter no_session;
  Counter bad_revision;
  Counter bad_description;
  Counter size_too_big;
  Counter too_many_clients;
  Counter setup_failed;
  Counter herald_on_session;
  Counter beyond_max_size;
  Counter bad_finished;
  Counter after_end;
  Counter stranger;  // on a session's port, from another address than its client's
};

// Refusal's values from kBadLength on, in order, then truncated.
inline constexpr CounterName<RefusalCounters> kRefusalCounters[] = {
    {&RefusalCounters::bad_length, "bad_length", "bad length"},
    {&RefusalCounters::stray_ack, "stray_ack", "stray ack"},
    {&RefusalCounters::unknown_type, "unknown_type", "unknown type"},
    {&RefusalCounters::no_session, "no_session", "no session"},
    {&RefusalCounters::bad_revision, "bad_revision", "bad revision"},
    {&RefusalCounters::bad_description, "bad_description", "bad description"},
    {&RefusalCounters::size_too_big, "size_too_big", "size too big"},
    {&RefusalCounters::too_many_clients, "too_many_clients", "too many clients"},
    {&RefusalCounters::setup_failed, "setup_failed", "setup failed"},
    {&RefusalCounters::herald_on_session, "herald_on_session", "herald on session"},
    {&RefusalCounters::beyond_max_size, "beyond_max_size", "beyond max size"},
    {&RefusalCounters::bad_finished, "bad_finished", "bad finished"},
    {&RefusalCounters::after_end, "after_end", "after end"},
    {&RefusalCounters::truncated, "truncated", "truncated"},
    {&RefusalCounters::stranger, "stranger", "stranger"},
};
static_assert(names_every_counter(kRefusalCounters));
static_assert(static_cast<int>(Refusal::kAfterEnd) == 13, "kRefusalCounters follows Refusal's order");

// The counter of `r` (not kNone). Context: any.
inline Counter& refusal_counter(RefusalCounters& c, Refusal r) noexcept {
  return c.*kRefusalCounters[static_cast<std::size_t>(r) - 1].member;
}

struct ErrorCounters {
  Counter write_errors;  // sessions ended because a write, truncate or fsync failed
  Counter disk_full;     // of which ENOSPC or EDQUOT
  Counter acks_failed;   // acks the socket refused
  Counter kernel_drops;  // SO_RXQ_OVFL: datagrams the kernel dropped on a full socket
};

inline constexpr CounterName<ErrorCounters> kErrorCounters[] = {
    {&ErrorCounters::write_errors, "write_errors", "write errors"},
    {&ErrorCounters::disk_full, "disk_full", "disk full"},
    {&ErrorCounters::acks_failed, "acks_failed", "acks failed"},
    {&ErrorCounters::kernel_drops, "kernel_drops", "kernel drops"},
};
static_assert(names_every_counter(kErrorCounters));

struct DumpdStats {
  DumpCounters dumps;
  RefusalCounters refused;
  ErrorCounters errors;
};

// The report:
//   text: "netpoll dumpd: <dump counters>\n"
//         "  refused: <refusal counters>\n"
//         "  errors: <error counters>\n"
//   JSON: {"dumps":{...},"refused":{...},"errors":{...}} and '\n'.
//   Prometheus (base/metrics_text.h, --metrics): every counter a family,
//         netpoll_dumpd_<key>_total, netpoll_dumpd_refused_<key>_total,
//         netpoll_dumpd_errors_<key>_total.
// Context: setup.
std::string stats_text(const DumpdStats& s);
std::string stats_json(const DumpdStats& s);
std::string stats_metrics(const DumpdStats& s);

}  // namespace np::dumpd
