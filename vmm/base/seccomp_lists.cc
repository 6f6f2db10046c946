// The allow-lists of vmm/base/seccomp.h. Collected with strace -f over the KVM and VFIO tiers
// (tests/kvm/seccomp_test.sh runs the daemon with the filter in kill mode), then read one by one:
// each entry names who makes the call.
#include "vmm/base/seccomp.h"

namespace pcivmm::base {
namespace {

// A vCPU thread after set-up: the run loop, device models, VFIO config and BAR-trap accesses,
// the memslot changes a config write causes, console output, kicks and stops.
constexpr const char* kVcpu[] = {
    "ioctl",               // KVM_RUN, KVM_SET_USER_MEMORY_REGION, KVM_IRQ_LINE, VFIO
    "read",                // eventfds
    "write",               // console and log output, eventfds
    "writev",              // stdio
    "pread64",             // VFIO config space and trapped BAR reads
    "pwrite64",            // VFIO config space and trapped BAR writes
    "futex",               // mutexes, condition variables
    "mmap",                // malloc
    "munmap",              // malloc
    "mprotect",            // malloc arenas
    "madvise",             // malloc, thread exit
    "brk",                 // malloc
    "rt_sigprocmask",      // signal masks around kicks
    "rt_sigreturn",        // the kick signal's handler
    "rt_sigaction",        // the SIGSYS reporter hands SIGSYS back to the kernel
    "tgkill",              // kicking the other vCPUs out of KVM_RUN; the SIGSYS reporter
    "getpid",              // tgkill's target
    "gettid",              // tgkill's target
    "sched_yield",         // spin-then-wait locks
    "sched_getparam",      // absl::Mutex reads the waiter's priority now and then
    "sched_getscheduler",  // (pthread_getschedparam)
    "nanosleep",           // back-off
    "clock_nanosleep",     // back-off
    "clock_gettime",       // timing (vDSO fallback)
    "gettimeofday",        // timing (vDSO fallback)
    "newfstatat",          // stdio's first write to the console file
    "fstat",               // (the same, older glibc)
    "restart_syscall",     // the kernel resumes a sleep a kick interrupted
    "exit",                // thread end
    "exit_group",          // a fatal error
};

// Main, API (gRPC), signal, watchdog and metrics threads after set-up. No execve, fork, ptrace,
// mount, bpf, perf_event_open, kexec, module loading, namespaces, keyrings.
// clang-format off
constexpr const char* kProcess[] = {
    // files and fds
    "read", "write", "readv", "writev", "pread64", "pwrite64", "lseek", "openat", "close",
    "newfstatat", "fstat", "statx", "getdents64", "readlinkat", "fcntl", "dup", "dup3",
    "ftruncate", "fallocate", "unlink", "unlinkat", "rename", "renameat", "renameat2", "fsync",
    "fdatasync", "getcwd", "access", "chmod", "fchmod", "ioctl", "memfd_create", "eventfd2",
    "pipe2",
    "umask",  // the API's Unix socket is bound under umask 0177 (it starts beside the guest)
    // memory
    "mmap", "munmap", "mprotect", "mremap", "madvise", "brk", "membarrier",
    "mincore",  // gRPC and absl probe whether an address is mapped
    // threads, scheduling, time, identity
    "clone", "clone3", "futex", "set_robust_list", "rseq", "sched_yield", "sched_getaffinity",
    "sched_getparam", "sched_getscheduler", "nanosleep", "clock_nanosleep", "clock_gettime",
    "clock_getres", "gettimeofday", "exit", "exit_group", "prctl", "seccomp", "getpid", "gettid",
    "getppid", "getuid", "geteuid", "getgid", "getegid", "uname", "sysinfo", "getrusage",
    "prlimit64", "getrandom",
    // signals
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "sigaltstack", "tgkill",
    "restart_syscall",
    // sockets and polling (gRPC: accept, read, write on the listeners made before the filter)
    "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "poll", "ppoll", "accept4",
    "socket", "socketpair", "bind", "listen", "connect", "getsockname", "getpeername",
    "getsockopt", "setsockopt", "recvmsg", "sendmsg", "recvfrom", "sendto", "shutdown",
};
// clang-format on

}  // namespace

absl::Span<const char* const> SeccompAllowList(SeccompRole role) {
  if (role == SeccompRole::kVcpu) return kVcpu;
  return kProcess;
}

}  // namespace pcivmm::base
