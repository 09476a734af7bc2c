// Weir's small expression language, used by `map`, `filter`, `project` and `datagen` fields.
//
// Grammar (precedence low to high):
//   expr    := or
//   or      := and ( ("or" | "||") and )*
//   and     := not ( ("and" | "&&") not )*
//   not     := ("not" | "!") not | cmp
//   cmp     := add ( ("=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">=") add )?
//   add     := mul ( ("+" | "-") mul )*          ("+" on two strings concatenates)
//   mul     := unary ( ("*" | "/" | "%") unary )*
//   unary   := "-" unary | primary
//   primary := literal | field | func "(" args ")" | "(" expr ")" | case
//   case    := "case" [expr] ("when" expr "then" expr)+ ["else" expr] "end"
//   literal := integer | decimal | 'string' (with '' for a quote) | true | false | null
//   field   := identifier | `quoted identifier`
// Functions are listed in docs/expressions.md.
//
// An expression is type-checked against its input Schema when compiled: an unknown field, an
// unknown function or a type mismatch is an InvalidArgument naming the problem and its position.
// Evaluation follows SQL null semantics: null in, null out; integer division or modulo by zero
// and failed casts give null. A compiled expression is immutable: Eval may be called from any
// thread, but each caller owns its output Value.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "weir/status.h"
#include "weir/types.h"

namespace weir {

class Expr {
 public:
  virtual ~Expr() = default;
  // The static type of the result (kNull only for the literal `null` and expressions made of it
  // alone, such as `null + null` or `coalesce(null)`).
  virtual Type type() const = 0;
  // Evaluates against `row` (which must match the schema the expression was compiled for) into
  // `out`, reusing out's string capacity. `out` must not be one of row's fields.
  virtual void Eval(const Row& row, Value& out) const = 0;
};

// Compiles `text` against `input`. Errors name the offending token and its 1-based column.
Result<std::unique_ptr<Expr>> CompileExpr(std::string_view text, const Schema& input);

// Compiles a predicate: like CompileExpr, but the result type must be bool.
Result<std::unique_ptr<Expr>> CompilePredicate(std::string_view text, const Schema& input);

}  // namespace weir
