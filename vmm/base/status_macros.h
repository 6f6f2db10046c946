// Abseil 20220623 ships no RETURN_IF_ERROR / ASSIGN_OR_RETURN; these are ours.
#ifndef PCIVMM_VMM_BASE_STATUS_MACROS_H_
#define PCIVMM_VMM_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define PCIVMM_RETURN_IF_ERROR(expr)            \
  do {                                          \
    if (absl::Status _st = (expr); !_st.ok()) { \
      return _st;                               \
    }                                           \
  } while (0)

#define PCIVMM_CONCAT_INNER_(a, b) a##b
#define PCIVMM_CONCAT_(a, b) PCIVMM_CONCAT_INNER_(a, b)

#define PCIVMM_ASSIGN_OR_RETURN(lhs, expr) \
  PCIVMM_ASSIGN_OR_RETURN_IMPL_(PCIVMM_CONCAT_(_statusor_, __LINE__), lhs, expr)
// `lhs` is a declaration ("auto x"), so it cannot be parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define PCIVMM_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();      \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)

#endif  // PCIVMM_VMM_BASE_STATUS_MACROS_H_
