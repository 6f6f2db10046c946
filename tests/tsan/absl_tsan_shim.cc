// ThreadSanitizer builds only (linked into every executable when PCIVMM_SANITIZE=thread).
//
// Debian 12's Abseil and gRPC are not built with TSan. Two consequences, two remedies:
//
// 1. TSan cannot see absl::Mutex's happens-before edges (its fast paths are atomics inside
//    the uninstrumented libabsl_synchronization.so), so it would report every variable an
//    absl::Mutex protects. This file interposes the exported lock, unlock, wait and await
//    entry points of absl::Mutex and absl::CondVar: a definition in the executable takes
//    precedence over the shared library's, for callers in the executable and in the
//    libraries (gRPC's gpr_mu is an absl::Mutex too). Each wrapper calls the library's
//    original (dlsym RTLD_NEXT) and tells TSan: __tsan_acquire after the lock is taken,
//    __tsan_release before it is given up. Readers and writers share one sync object, which
//    can hide a reader-reader race (there is no such thing under a mutex) but invents none.
//
// 2. gRPC's and Abseil's own code hands memory between threads through uninstrumented
//    atomics (gRPC's executors and event engine, absl's time-zone cache and Status payloads);
//    the default suppressions below name those libraries' modules and nothing else.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/synchronization/mutex.h"

#define PCIVMM_STR2(x) #x
#define PCIVMM_STR(x) PCIVMM_STR2(x)

namespace {

// "_ZN4absl7debian3" for absl::debian3::; the rest of each name is namespace independent
// (NS0_ refers back to it).
std::string Prefix() {
  const char* ns = PCIVMM_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  return "_ZN4absl" + std::to_string(std::strlen(ns)) + ns;
}

template <typename Fn>
Fn Real(const char* suffix) {
  const std::string name = Prefix() + suffix;
  void* p = dlsym(RTLD_NEXT, name.c_str());
  if (p == nullptr) {
    std::fprintf(stderr, "absl_tsan_shim: %s not found in the shared Abseil\n", name.c_str());
    std::abort();
  }
  // A member function of the Itanium C++ ABI is a function taking `this` first.
  return reinterpret_cast<Fn>(p);
}

using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Time;

}  // namespace

// Reports with a frame inside one of Debian's uninstrumented libraries: what those frames
// touch, TSan only sees through interceptors (new, delete, memcmp), never their ordering.
extern "C" const char* __tsan_default_suppressions() {
  return "race:libgrpc.so\n"
         "race:libgrpc++.so\n"
         "race:libgpr.so\n"
         "race:libabsl_\n";
}

void Mutex::Lock() {
  static const auto real = Real<void (*)(Mutex*)>("5Mutex4LockEv");
  real(this);
  __tsan_acquire(this);
}

void Mutex::ReaderLock() {
  static const auto real = Real<void (*)(Mutex*)>("5Mutex10ReaderLockEv");
  real(this);
  __tsan_acquire(this);
}

void Mutex::Unlock() {
  static const auto real = Real<void (*)(Mutex*)>("5Mutex6UnlockEv");
  __tsan_release(this);
  real(this);
}

void Mutex::ReaderUnlock() {
  static const auto real = Real<void (*)(Mutex*)>("5Mutex12ReaderUnlockEv");
  __tsan_release(this);
  real(this);
}

bool Mutex::TryLock() {
  static const auto real = Real<bool (*)(Mutex*)>("5Mutex7TryLockEv");
  const bool locked = real(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

bool Mutex::ReaderTryLock() {
  static const auto real = Real<bool (*)(Mutex*)>("5Mutex13ReaderTryLockEv");
  const bool locked = real(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

void Mutex::LockWhen(const Condition& c) {
  static const auto real =
      Real<void (*)(Mutex*, const Condition&)>("5Mutex8LockWhenERKNS0_9ConditionE");
  real(this, c);
  __tsan_acquire(this);
}

void Mutex::ReaderLockWhen(const Condition& c) {
  static const auto real =
      Real<void (*)(Mutex*, const Condition&)>("5Mutex14ReaderLockWhenERKNS0_9ConditionE");
  real(this, c);
  __tsan_acquire(this);
}

bool Mutex::LockWhenWithTimeout(const Condition& c, Duration d) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Duration)>(
      "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const bool met = real(this, c, d);
  __tsan_acquire(this);  // held either way
  return met;
}

bool Mutex::LockWhenWithDeadline(const Condition& c, Time t) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Time)>(
      "5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const bool met = real(this, c, t);
  __tsan_acquire(this);
  return met;
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& c, Duration d) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Duration)>(
      "5Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const bool met = real(this, c, d);
  __tsan_acquire(this);
  return met;
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& c, Time t) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Time)>(
      "5Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const bool met = real(this, c, t);
  __tsan_acquire(this);
  return met;
}

// Await and the condition-variable waits give the lock up and take it back inside.
void Mutex::Await(const Condition& c) {
  static const auto real =
      Real<void (*)(Mutex*, const Condition&)>("5Mutex5AwaitERKNS0_9ConditionE");
  __tsan_release(this);
  real(this, c);
  __tsan_acquire(this);
}

bool Mutex::AwaitWithTimeout(const Condition& c, Duration d) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Duration)>(
      "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  __tsan_release(this);
  const bool met = real(this, c, d);
  __tsan_acquire(this);
  return met;
}

bool Mutex::AwaitWithDeadline(const Condition& c, Time t) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Time)>(
      "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  __tsan_release(this);
  const bool met = real(this, c, t);
  __tsan_acquire(this);
  return met;
}

void CondVar::Wait(Mutex* mu) {
  static const auto real = Real<void (*)(CondVar*, Mutex*)>("7CondVar4WaitEPNS0_5MutexE");
  __tsan_release(mu);
  real(this, mu);
  __tsan_acquire(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration d) {
  static const auto real = Real<bool (*)(CondVar*, Mutex*, Duration)>(
      "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  __tsan_release(mu);
  const bool timed_out = real(this, mu, d);
  __tsan_acquire(mu);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time t) {
  static const auto real =
      Real<bool (*)(CondVar*, Mutex*, Time)>("7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  __tsan_release(mu);
  const bool timed_out = real(this, mu, t);
  __tsan_acquire(mu);
  return timed_out;
}
