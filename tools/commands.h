// The netpoll subcommands. Each returns the process exit status:
// 0 success, 1 failure at run time, 2 usage error (handled by main()).
#pragma once

namespace np::tools {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);  // argv[1] is the subcommand's name
};

int cmd_dump(int argc, char** argv);
int cmd_inject(int argc, char** argv);
int cmd_send(int argc, char** argv);
int cmd_recv(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_console(int argc, char** argv);
int cmd_run(int argc, char** argv);
int cmd_listen(int argc, char** argv);
int cmd_dumpd(int argc, char** argv);
int cmd_coredump(int argc, char** argv);
int cmd_cmd(int argc, char** argv);
int cmd_keygen(int argc, char** argv);
int bench_listen(int argc, char** argv);  // netpoll bench listen
int bench_console(int argc, char** argv);  // netpoll bench console
int bench_crash(int argc, char** argv);    // netpoll bench crash
int bench_dumpd(int argc, char** argv);    // netpoll bench dumpd
int bench_dump(int argc, char** argv);     // netpoll bench dump
int bench_recv(int argc, char** argv);     // netpoll bench recv

}  // namespace np::tools
