// Recursive-descent parser for Biscuit Datalog. Decisions are made by bounded lookahead
// (no exponential backtracking); expressions are emitted directly in postfix order, so
// long operator chains never deepen the recursion. Internally a syntax error is thrown as
// ParseFailure and converted to datalog::Error at the API boundary.
#include "biscuit/datalog/parser.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <set>

namespace biscuit::datalog {

namespace {

struct ParseFailure {
  std::size_t offset;
  std::string message;
};

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == ':';
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

// Offset of the first invalid UTF-8 sequence, or npos.
std::size_t invalid_utf8_offset(std::string_view s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

class Parser {
 public:
  Parser(std::string_view in, const ParseOptions& options) : in_(in), opt_(options) {}

  std::size_t pos() const { return pos_; }

  // ------------------------------------------------------------------ primitives
  [[noreturn]] void fail(std::string message) const { throw ParseFailure{pos_, std::move(message)}; }
  [[noreturn]] void fail_at(std::size_t at, std::string message) const {
    throw ParseFailure{at, std::move(message)};
  }
  bool eof() const { return pos_ >= in_.size(); }
  char peek(std::size_t k = 0) const { return pos_ + k < in_.size() ? in_[pos_ + k] : '\0'; }
  void ws() {
    while (pos_ < in_.size() && is_space(in_[pos_])) ++pos_;
  }
  bool starts_with(std::string_view s) const { return in_.substr(pos_).substr(0, s.size()) == s; }
  bool starts_with_ci(std::string_view s) const {
    if (in_.size() - pos_ < s.size()) return false;
    for (std::size_t i = 0; i < s.size(); ++i) {
      char a = in_[pos_ + i];
      if (a >= 'A' && a <= 'Z') a = static_cast<char>(a - 'A' + 'a');
      if (a != s[i]) return false;
    }
    return true;
  }
  bool eat(std::string_view s) {
    if (!starts_with(s)) return false;
    pos_ += s.size();
    return true;
  }
  void expect(char c, const char* what) {
    if (peek() != c || eof()) fail(std::string("expected ") + what);
    ++pos_;
  }
  std::string describe_here() const {
    if (eof()) return "end of input";
    std::string s(in_.substr(pos_, 20));
    auto nl = s.find('\n');
    if (nl != std::string::npos) s.resize(nl);
    return "'" + s + "'";
  }

  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser) : p(parser) {
      if (++p.depth_ > p.opt_.max_depth) {
        p.fail("nesting too deep (more than " + std::to_string(p.opt_.max_depth) + " levels)");
      }
    }
    ~DepthGuard() { --p.depth_; }
  };

  std::string name() {
    const std::size_t start = pos_;
    while (pos_ < in_.size() && is_name_char(in_[pos_])) ++pos_;
    if (pos_ == start) fail("expected a name, got " + describe_here());
    return std::string(in_.substr(start, pos_ - start));
  }

  // `{name}` with name = alphabetic then [alnum_:]*; at '{'. Returns false (pos unchanged)
  // if this is not a parameter.
  bool try_parameter(std::string& out) {
    if (peek() != '{' || !is_alpha(peek(1))) return false;
    std::size_t i = pos_ + 1;
    while (i < in_.size() && is_name_char(in_[i])) ++i;
    if (i >= in_.size() || in_[i] != '}') return false;
    out = std::string(in_.substr(pos_ + 1, i - pos_ - 1));
    pos_ = i + 1;
    return true;
  }

  std::string string_literal() {
    const std::size_t start = pos_;
    expect('"', "'\"'");
    std::string out;
    while (true) {
      if (eof()) fail_at(start, "unterminated string literal");
      const char c = in_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c == '\\') {
        const char e = peek(1);
        if (e == '\\' || e == '"') {
          out.push_back(e);
        } else if (e == 'n') {
          out.push_back('\n');
        } else {
          fail("invalid escape sequence in string (allowed: \\\" \\\\ \\n)");
        }
        pos_ += 2;
        continue;
      }
      out.push_back(c);
      ++pos_;
    }
  }

  std::vector<uint8_t> hex_bytes() {
    const std::size_t start = pos_;
    while (pos_ < in_.size() && is_hex(in_[pos_])) ++pos_;
    const std::size_t len = pos_ - start;
    if (len == 0) fail("expected hexadecimal digits");
    if (len % 2 != 0) fail_at(start, "odd number of hexadecimal digits");
    std::vector<uint8_t> out(len / 2);
    for (std::size_t i = 0; i < len / 2; ++i) {
      out[i] = static_cast<uint8_t>(hex_value(in_[start + 2 * i]) * 16 + hex_value(in_[start + 2 * i + 1]));
    }
    return out;
  }

  // If an RFC 3339 date starts here (delimited like the reference: up to , space ) ] ; }),
  // consumes it.
  std::optional<uint64_t> try_date() {
    if (!(is_digit(peek()) && is_digit(peek(1)) && is_digit(peek(2)) && is_digit(peek(3)) &&
          peek(4) == '-')) {
      return std::nullopt;
    }
    std::size_t end = pos_;
    while (end < in_.size() && end - pos_ <= 64) {
      const char c = in_[end];
      if (c == ',' || c == ' ' || c == ')' || c == ']' || c == ';' || c == '}') break;
      ++end;
    }
    if (end - pos_ > 64) return std::nullopt;
    auto d = parse_rfc3339(in_.substr(pos_, end - pos_));
    if (d) pos_ = end;
    return d;
  }

  int64_t integer_literal() {
    const std::size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (!is_digit(peek())) fail_at(start, "expected an integer");
    while (is_digit(peek())) ++pos_;
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(in_.data() + start, in_.data() + pos_, v);
    if (ec != std::errc() || ptr != in_.data() + pos_) {
      fail_at(start, "integer literal out of the 64-bit signed range");
    }
    return v;
  }

  // ------------------------------------------------------------------------ terms
  enum class TermContext { Any, Fact, Set, Collection };

  ast::Term term(TermContext ctx) {
    ws();
    const std::size_t start = pos_;
    const char c = peek();
    if (eof()) fail("missing term, got end of input");
    std::string pname;
    if (c == '{') {
      if (try_parameter(pname)) return ast::Term::parameter(pname);
      if (ctx == TermContext::Set) {
        // Only maps may appear inside a set.
        if (!looks_like_map()) fail("sets cannot contain other sets");
        return map_literal();
      }
      if (starts_with("{,}")) {
        pos_ += 3;
        return ast::Term::set({});
      }
      if (looks_like_map()) return map_literal();
      return set_literal();
    }
    if (c == '"') return ast::Term::string(string_literal());
    if (auto d = try_date()) return ast::Term::date(*d);
    if (c == '$') {
      if (ctx != TermContext::Any) {
        fail(ctx == TermContext::Fact  ? "variables are not allowed in facts"
             : ctx == TermContext::Set ? "variables are not allowed in sets"
                                       : "variables are not allowed in arrays and maps");
      }
      ++pos_;
      if (!is_name_char(peek())) fail("expected a variable name after '$'");
      return ast::Term::variable(name());
    }
    if (c == '-' || is_digit(c)) return ast::Term::integer(integer_literal());
    if (starts_with("hex:")) {
      pos_ += 4;
      return ast::Term::bytes(hex_bytes());
    }
    if (eat("true")) return ast::Term::boolean(true);
    if (eat("false")) return ast::Term::boolean(false);
    if (eat("null")) return ast::Term::null();
    if (c == '[') {
      if (ctx == TermContext::Set) fail("arrays are not allowed in sets");
      return array_literal();
    }
    fail_at(start, "expected a valid term, got " + describe_here());
  }

  // At '{': is the first element a map key followed by ':' (or is the literal `{ }`)?
  bool looks_like_map() const {
    std::size_t i = pos_ + 1;
    auto skip = [&] {
      while (i < in_.size() && is_space(in_[i])) ++i;
    };
    skip();
    if (i >= in_.size()) return false;
    const char c = in_[i];
    if (c == '}') return true;  // `{}` is the empty map
    if (c == '"') {
      ++i;
      while (i < in_.size() && in_[i] != '"') i += in_[i] == '\\' ? 2 : 1;
      if (i >= in_.size()) return false;
      ++i;
    } else if (c == '-' || is_digit(c)) {
      ++i;
      while (i < in_.size() && is_digit(in_[i])) ++i;
    } else if (c == '{' && i + 1 < in_.size() && is_alpha(in_[i + 1])) {
      ++i;
      while (i < in_.size() && is_name_char(in_[i])) ++i;
      if (i >= in_.size() || in_[i] != '}') return false;
      ++i;
    } else {
      return false;
    }
    skip();
    return i < in_.size() && in_[i] == ':';
  }

  ast::Term map_literal() {
    DepthGuard guard(*this);
    expect('{', "'{'");
    std::vector<std::pair<ast::MapKey, ast::Term>> entries;
    ws();
    if (peek() != '}') {
      while (true) {
        ws();
        ast::MapKey key;
        std::string pname;
        if (peek() == '{' && try_parameter(pname)) {
          key = ast::MapKey::parameter(pname);
        } else if (peek() == '"') {
          key = ast::MapKey::from_string(string_literal());
        } else if (peek() == '-' || is_digit(peek())) {
          key = ast::MapKey::from_integer(integer_literal());
        } else {
          fail("expected a map key (integer, string or {parameter}), got " + describe_here());
        }
        ws();
        expect(':', "':' after a map key");
        ast::Term value = term(TermContext::Collection);
        entries.emplace_back(std::move(key), std::move(value));
        ws();
        if (peek() == ',') {
          ++pos_;
          continue;
        }
        break;
      }
    }
    ws();
    expect('}', "'}' or ',' in map");
    return ast::Term::map(std::move(entries));
  }

  ast::Term set_literal() {
    DepthGuard guard(*this);
    const std::size_t start = pos_;
    expect('{', "'{'");
    std::vector<ast::Term> items;
    int kind = -1;
    while (true) {
      ast::Term t = term(TermContext::Set);
      const int k = static_cast<int>(t.kind());
      if (kind >= 0 && k != kind) fail_at(start, "set elements must have the same type");
      kind = k;
      items.push_back(std::move(t));
      ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      break;
    }
    ws();
    expect('}', "'}' or ',' in set");
    return ast::Term::set(std::move(items));
  }

  ast::Term array_literal() {
    DepthGuard guard(*this);
    expect('[', "'['");
    std::vector<ast::Term> items;
    ws();
    if (peek() != ']') {
      while (true) {
        items.push_back(term(TermContext::Collection));
        ws();
        if (peek() == ',') {
          ++pos_;
          continue;
        }
        break;
      }
    }
    ws();
    expect(']', "']' or ',' in array");
    return ast::Term::array(std::move(items));
  }

  // -------------------------------------------------------------------- predicates
  // name ws '(' terms ')' — `allow_empty` for rule heads.
  ast::Predicate predicate(TermContext ctx, bool allow_empty) {
    ws();
    ast::Predicate p;
    p.name = name();
    ws();
    expect('(', "'(' after predicate name");
    ws();
    if (peek() == ')' && allow_empty) {
      ++pos_;
      return p;
    }
    while (true) {
      p.terms.push_back(term(ctx));
      ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      break;
    }
    ws();
    expect(')', "')' or ',' after a term");
    return p;
  }

  // The keyword `trusting` as a whole word (a predicate may be named `trusting_x`) that
  // opens a scope list: `trusting(...)` is a predicate named trusting (a scope never starts
  // with '('), so a fact `trusting(1);` printed first in a block reads back as that fact.
  bool at_trusting() const {
    if (!starts_with("trusting") || is_name_char(peek(8))) return false;
    std::size_t i = pos_ + 8;
    while (i < in_.size() && is_space(in_[i])) ++i;
    return i >= in_.size() || in_[i] != '(';
  }

  // Is there `name ws (` here?
  bool at_predicate() const {
    std::size_t i = pos_;
    while (i < in_.size() && is_name_char(in_[i])) ++i;
    if (i == pos_) return false;
    while (i < in_.size() && is_space(in_[i])) ++i;
    return i < in_.size() && in_[i] == '(';
  }

  // ------------------------------------------------------------------- expressions
  using Ops = std::vector<ast::Op>;

  static void push_binary(Ops& out, BinaryOp op, std::string ffi = {}) {
    out.push_back(ast::Op{ast::Binary{op, std::move(ffi)}});
  }
  static void push_unary(Ops& out, UnaryOp op, std::string ffi = {}) {
    out.push_back(ast::Op{ast::Unary{op, std::move(ffi)}});
  }
  static void push_closure(Ops& out, std::vector<std::string> params, Ops body) {
    out.push_back(ast::Op{ast::Closure{std::move(params), std::move(body)}});
  }

  using Level = void (Parser::*)(Ops&);

  // One left-associative precedence level: `next (op next)*`. `match` recognises an operator
  // at the current position, consuming it, and names it. The right operand of a lazy
  // operator (&&, ||) becomes a closure, evaluated only when needed.
  template <typename Match>
  void left_assoc(Ops& out, Level next, Match match, bool lazy = false) {
    (this->*next)(out);
    while (true) {
      const std::size_t save = pos_;
      ws();
      const std::optional<BinaryOp> op = match();
      if (!op) {
        pos_ = save;
        return;
      }
      if (lazy) {
        Ops rhs;
        (this->*next)(rhs);
        push_closure(out, {}, std::move(rhs));
      } else {
        (this->*next)(out);
      }
      push_binary(out, *op);
    }
  }

  // The operator `token` (not followed by `unless_next`, when given), consumed.
  std::optional<BinaryOp> take(std::string_view token, BinaryOp op, char unless_next = '\0') {
    if (!starts_with(token)) return std::nullopt;
    if (unless_next != '\0' && peek(token.size()) == unless_next) return std::nullopt;
    pos_ += token.size();
    return op;
  }

  void expr(Ops& out) {
    DepthGuard guard(*this);
    left_assoc(
        out, &Parser::expr_and, [&] { return take("||", BinaryOp::LazyOr); }, true);
  }

  void expr_and(Ops& out) {
    left_assoc(
        out, &Parser::expr_cmp, [&] { return take("&&", BinaryOp::LazyAnd); }, true);
  }

  void expr_cmp(Ops& out) {  // non-associative comparisons
    expr_xor(out);
    const std::size_t save = pos_;
    ws();
    static const std::pair<std::string_view, BinaryOp> kOps[] = {
        {"<=", BinaryOp::LessOrEqual},
        {">=", BinaryOp::GreaterOrEqual},
        {"<", BinaryOp::LessThan},
        {">", BinaryOp::GreaterThan},
        {"===", BinaryOp::Equal},
        {"!==", BinaryOp::NotEqual},
        {"==", BinaryOp::HeterogeneousEqual},
        {"!=", BinaryOp::HeterogeneousNotEqual},
    };
    for (const auto& [tok, op] : kOps) {
      if (eat(tok)) {
        expr_xor(out);
        push_binary(out, op);
        return;
      }
    }
    pos_ = save;
  }

  void expr_xor(Ops& out) {
    left_assoc(out, &Parser::expr_bor, [&] { return take("^", BinaryOp::BitwiseXor); });
  }

  void expr_bor(Ops& out) {
    left_assoc(out, &Parser::expr_band, [&] { return take("|", BinaryOp::BitwiseOr, '|'); });
  }

  void expr_band(Ops& out) {
    left_assoc(out, &Parser::expr_add, [&] { return take("&", BinaryOp::BitwiseAnd, '&'); });
  }

  void expr_add(Ops& out) {
    left_assoc(out, &Parser::expr_mul, [&] {
      if (auto op = take("+", BinaryOp::Add)) return op;
      return take("-", BinaryOp::Sub, '>');  // not the closure arrow
    });
  }

  void expr_mul(Ops& out) {
    left_assoc(out, &Parser::expr_unary, [&] {
      if (auto op = take("*", BinaryOp::Mul)) return op;
      return take("/", BinaryOp::Div);
    });
  }

  void expr_unary(Ops& out) {
    ws();
    if (peek() == '!' && !eof()) {
      DepthGuard guard(*this);
      ++pos_;
      ws();
      expr_add(out);  // the reference negates an additive expression
      push_unary(out, UnaryOp::Negate);
      return;
    }
    expr_methods(out);
  }

  void expr_methods(Ops& out) {
    const std::size_t start = out.size();
    expr_primary(out);
    while (peek() == '.' && !eof()) {
      const std::size_t dot = pos_;
      ++pos_;
      std::string method;
      while (pos_ < in_.size() && is_name_char(in_[pos_])) ++pos_;
      method = std::string(in_.substr(dot + 1, pos_ - dot - 1));
      if (peek() != '(') fail_at(dot, "expected a method call like .contains(...) after '.'");
      ++pos_;
      ws();
      std::string ffi;
      const bool is_extern = method.rfind("extern::", 0) == 0;
      if (is_extern) {
        ffi = method.substr(8);
        if (ffi.empty()) fail_at(dot, "expected a function name after 'extern::'");
      }
      // zero-argument methods
      if (method == "length" || method == "type" || (is_extern && peek() == ')')) {
        expect(')', "')' (this method takes no argument)");
        push_unary(out,
                   method == "length" ? UnaryOp::Length
                   : method == "type" ? UnaryOp::TypeOf
                                      : UnaryOp::Ffi,
                   ffi);
        continue;
      }
      static const std::pair<std::string_view, BinaryOp> kMethods[] = {
          {"contains", BinaryOp::Contains},
          {"starts_with", BinaryOp::Prefix},
          {"ends_with", BinaryOp::Suffix},
          {"matches", BinaryOp::Regex},
          {"intersection", BinaryOp::Intersection},
          {"union", BinaryOp::Union},
          {"all", BinaryOp::All},
          {"any", BinaryOp::Any},
          {"get", BinaryOp::Get},
          {"try_or", BinaryOp::TryOr},
      };
      std::optional<BinaryOp> op;
      if (is_extern) op = BinaryOp::Ffi;
      for (const auto& [n, o] : kMethods) {
        if (method == n) op = o;
      }
      if (!op) fail_at(dot + 1, "unknown method '" + method + "'");
      if (*op == BinaryOp::All || *op == BinaryOp::Any) {
        if (peek() != '$') fail("expected a closure like `$x -> expression`");
        ++pos_;
        std::string param = name();
        ws();
        if (!eat("->")) fail("expected '->' after the closure parameter");
        ws();
        Ops body;
        expr(body);
        ws();
        expect(')', "')' closing the closure");
        push_closure(out, {std::move(param)}, std::move(body));
        push_binary(out, *op);
        continue;
      }
      if (*op == BinaryOp::TryOr) {
        Ops left(std::make_move_iterator(out.begin() + static_cast<std::ptrdiff_t>(start)),
                 std::make_move_iterator(out.end()));
        out.resize(start);
        push_closure(out, {}, std::move(left));
        expr(out);
        ws();
        expect(')', "')' closing the method argument");
        push_binary(out, BinaryOp::TryOr);
        continue;
      }
      expr(out);
      ws();
      expect(')', "')' closing the method argument");
      push_binary(out, *op, ffi);
    }
  }

  void expr_primary(Ops& out) {
    ws();
    if (peek() == '(' && !eof()) {
      ++pos_;
      ws();
      expr(out);
      ws();
      expect(')', "')'");
      push_unary(out, UnaryOp::Parens);
      return;
    }
    out.push_back(ast::Op{term(TermContext::Any)});
  }

  // ------------------------------------------------------------------ rule bodies
  struct Body {
    std::vector<ast::Predicate> predicates;
    std::vector<ast::Expression> expressions;
    std::vector<ast::Scope> scopes;
  };

  ast::Scope scope() {
    ws();
    ast::Scope s;
    if (eat("authority")) {
      s.kind = ast::Scope::Kind::Authority;
    } else if (eat("previous")) {
      s.kind = ast::Scope::Kind::Previous;
    } else if (starts_with("ed25519/") || starts_with("secp256r1/")) {
      s.kind = ast::Scope::Kind::PublicKey;
      s.key = public_key();
    } else if (peek() == '{') {
      ++pos_;
      s.kind = ast::Scope::Kind::Parameter;
      s.parameter = name();
      expect('}', "'}' closing the parameter");
    } else {
      fail("expected a scope (authority, previous, ed25519/<hex>, secp256r1/<hex> or {param}), got " +
           describe_here());
    }
    return s;
  }

  PublicKey public_key() {
    const std::size_t start = pos_;
    PublicKey k;
    if (eat("ed25519/")) {
      k.algorithm = PublicKey::Algorithm::Ed25519;
      k.key = hex_bytes();
      if (k.key.size() != 32) fail_at(start, "an ed25519 public key is 32 bytes");
    } else if (eat("secp256r1/")) {
      k.algorithm = PublicKey::Algorithm::Secp256r1;
      k.key = hex_bytes();
      if (k.key.size() != 33 || (k.key[0] != 2 && k.key[0] != 3)) {
        fail_at(start, "a secp256r1 public key is 33 bytes (compressed SEC1)");
      }
    } else {
      fail("expected a public key (ed25519/<hex> or secp256r1/<hex>)");
    }
    return k;
  }

  std::vector<ast::Scope> scopes_after_trusting() {
    std::vector<ast::Scope> out;
    while (true) {
      out.push_back(scope());
      const std::size_t save = pos_;
      ws();
      if (peek() == ',' && !eof()) {
        ++pos_;
        continue;
      }
      pos_ = save;
      return out;
    }
  }

  Body body() {
    Body b;
    while (true) {
      ws();
      if (at_predicate()) {
        b.predicates.push_back(predicate(TermContext::Any, false));
      } else {
        if (eof()) fail("expected a predicate or an expression, got end of input");
        ast::Expression e;
        expr(e.ops);
        b.expressions.push_back(std::move(e));
      }
      const std::size_t save = pos_;
      ws();
      if (peek() == ',' && !eof()) {
        ++pos_;
        continue;
      }
      pos_ = save;
      break;
    }
    const std::size_t save = pos_;
    ws();
    if (at_trusting()) {
      pos_ += 8;
      b.scopes = scopes_after_trusting();
    } else {
      pos_ = save;
    }
    return b;
  }

  static ast::Rule query_rule(Body b) {
    ast::Rule r;
    r.head.name = "query";
    r.body = std::move(b.predicates);
    r.expressions = std::move(b.expressions);
    r.scopes = std::move(b.scopes);
    return r;
  }

  std::vector<ast::Rule> queries() {
    std::vector<ast::Rule> out;
    out.push_back(query_rule(body()));
    while (true) {
      const std::size_t save = pos_;
      ws();
      if (!starts_with_ci("or")) {
        pos_ = save;
        return out;
      }
      pos_ += 2;
      out.push_back(query_rule(body()));
    }
  }

  // --------------------------------------------------------------------- elements
  enum class Keyword { None, CheckIf, CheckAll, RejectIf, AllowIf, DenyIf };

  Keyword keyword() const {
    if (starts_with_ci("check if")) return Keyword::CheckIf;
    if (starts_with_ci("check all")) return Keyword::CheckAll;
    if (starts_with_ci("reject if")) return Keyword::RejectIf;
    if (starts_with_ci("allow if")) return Keyword::AllowIf;
    if (starts_with_ci("deny if")) return Keyword::DenyIf;
    return Keyword::None;
  }

  ast::Check check_element(Keyword k) {
    ast::Check c;
    switch (k) {
      case Keyword::CheckIf:
        c.kind = CheckKind::One;
        pos_ += 8;
        break;
      case Keyword::CheckAll:
        c.kind = CheckKind::All;
        pos_ += 9;
        break;
      default:
        c.kind = CheckKind::Reject;
        pos_ += 9;
        break;
    }
    c.queries = queries();
    return c;
  }

  ast::Policy policy_element(Keyword k) {
    ast::Policy p;
    if (k == Keyword::AllowIf) {
      p.kind = PolicyKind::Allow;
      pos_ += 8;
    } else {
      p.kind = PolicyKind::Deny;
      pos_ += 7;
    }
    p.queries = queries();
    return p;
  }

  void validate_rule(const ast::Rule& r, std::size_t at) const {
    if (!opt_.validate_rule_variables) return;
    auto st = ast::validate_variables(r);
    if (!st) fail_at(at, st.error().message);
  }

  static bool has_variable(const ast::Term& t) {
    switch (t.kind()) {
      case ast::TermKind::Variable:
        return true;
      case ast::TermKind::Array:
        return std::any_of(t.as_array().begin(), t.as_array().end(), has_variable);
      default:
        return false;
    }
  }

  // A fact or a rule, starting at a predicate.
  void fact_or_rule(ast::Source& src) {
    const std::size_t start = pos_;
    ast::Predicate head = predicate(TermContext::Any, true);
    const std::size_t save = pos_;
    ws();
    if (eat("<-")) {
      Body b = body();
      ast::Rule r;
      r.head = std::move(head);
      r.body = std::move(b.predicates);
      r.expressions = std::move(b.expressions);
      r.scopes = std::move(b.scopes);
      validate_rule(r, start);
      src.rules.push_back(std::move(r));
      return;
    }
    pos_ = save;
    if (head.terms.empty()) fail_at(start, "a fact needs at least one term");
    for (const auto& t : head.terms) {
      if (has_variable(t)) fail_at(start, "variables are not allowed in facts");
    }
    src.facts.push_back(ast::Fact{std::move(head)});
  }

  void separator() {
    ws();
    if (eof()) return;
    if (peek() == ';') {
      ++pos_;
      return;
    }
    if (peek() == ')') fail("unexpected ')'");
    fail("expected ';' or the next term or expression after ',', got " + describe_here());
  }

  ast::Source source(bool block) {
    ast::Source src;
    ws();
    if (block && at_trusting()) {
      pos_ += 8;
      src.scopes = scopes_after_trusting();
      separator();
    }
    while (true) {
      ws();
      if (eof()) return src;
      if (starts_with("//")) {
        while (!eof() && peek() != '\n') ++pos_;
        continue;
      }
      if (starts_with("/*")) {
        const auto end = in_.find("*/", pos_ + 2);
        if (end == std::string_view::npos) fail("unterminated /* comment");
        pos_ = end + 2;
        continue;
      }
      const Keyword k = keyword();
      if (k == Keyword::CheckIf || k == Keyword::CheckAll || k == Keyword::RejectIf) {
        src.checks.push_back(check_element(k));
      } else if (k == Keyword::AllowIf || k == Keyword::DenyIf) {
        if (block) fail("policies (allow if / deny if) are only allowed in authorizer code");
        src.policies.push_back(policy_element(k));
      } else if (is_name_char(peek())) {
        fact_or_rule(src);
      } else {
        fail("expected a fact, rule, check or policy, got " + describe_here());
      }
      separator();
    }
  }

  void end() {
    ws();
    if (peek() == ';' && !eof()) {
      ++pos_;
      ws();
    }
    if (!eof()) fail("unexpected trailing input " + describe_here());
  }

  ast::Fact single_fact() {
    ast::Source src;
    ws();
    fact_or_rule(src);
    if (src.facts.empty()) fail_at(0, "expected a fact, got a rule");
    end();
    return std::move(src.facts.front());
  }

  ast::Rule single_rule() {
    ast::Source src;
    ws();
    fact_or_rule(src);
    if (src.rules.empty()) fail_at(0, "expected a rule (head <- body)");
    end();
    return std::move(src.rules.front());
  }

  ast::Check single_check() {
    ws();
    const Keyword k = keyword();
    if (k != Keyword::CheckIf && k != Keyword::CheckAll && k != Keyword::RejectIf) {
      fail("expected 'check if', 'check all' or 'reject if'");
    }
    ast::Check c = check_element(k);
    end();
    return c;
  }

  ast::Policy single_policy() {
    ws();
    const Keyword k = keyword();
    if (k != Keyword::AllowIf && k != Keyword::DenyIf) fail("expected 'allow if' or 'deny if'");
    ast::Policy p = policy_element(k);
    end();
    return p;
  }

  ast::Expression single_expression() {
    ast::Expression e;
    expr(e.ops);
    end();
    return e;
  }

  ast::Term single_term() {
    ast::Term t = term(TermContext::Any);
    end();
    return t;
  }

 private:
  std::string_view in_;
  const ParseOptions& opt_;
  std::size_t pos_ = 0;
  std::size_t depth_ = 0;
};

Error to_error(std::string_view text, const ParseFailure& f) {
  Error e;
  e.code = Error::Code::Parse;
  e.message = f.message;
  e.offset = std::min(f.offset, text.size());
  e.line = 1;
  e.column = 1;
  for (std::size_t i = 0; i < e.offset; ++i) {
    if (text[i] == '\n') {
      ++e.line;
      e.column = 1;
    } else {
      ++e.column;
    }
  }
  return e;
}

template <class T, class F>
Result<T> run(std::string_view text, const ParseOptions& options, F&& f) {
  if (text.size() > options.max_input_bytes) {
    return to_error(text,
                    ParseFailure{0, "input too large (" + std::to_string(text.size()) + " bytes, limit " +
                                        std::to_string(options.max_input_bytes) + ")"});
  }
  if (auto bad = invalid_utf8_offset(text); bad != std::string_view::npos) {
    return to_error(text, ParseFailure{bad, "input is not valid UTF-8"});
  }
  Parser p(text, options);
  try {
    return f(p);
  } catch (const ParseFailure& failure) {
    return to_error(text, failure);
  }
}

}  // namespace

namespace {
// Holds what parsed to the size limits (after parsing: a syntax error is reported first).
template <class T, class Check>
Result<T> limited(Result<T> parsed, Check&& check) {
  if (!parsed) return parsed;
  if (auto st = check(*parsed); !st) return std::move(st).error();
  return parsed;
}
}  // namespace

Result<ast::Source> parse_block_source(std::string_view text, const ParseOptions& options) {
  return limited(run<ast::Source>(text, options, [](Parser& p) { return p.source(true); }),
                 [&](const ast::Source& s) { return check_limits(s, options.limits, true); });
}

Result<ast::Source> parse_authorizer_source(std::string_view text, const ParseOptions& options) {
  return limited(run<ast::Source>(text, options, [](Parser& p) { return p.source(false); }),
                 [&](const ast::Source& s) { return check_limits(s, options.limits, false); });
}

Result<ast::Fact> parse_fact(std::string_view text, const ParseOptions& options) {
  return limited(run<ast::Fact>(text, options, [](Parser& p) { return p.single_fact(); }),
                 [&](const ast::Fact& f) { return check_limits(f, options.limits); });
}

Result<ast::Rule> parse_rule(std::string_view text, const ParseOptions& options) {
  return limited(run<ast::Rule>(text, options, [](Parser& p) { return p.single_rule(); }),
                 [&](const ast::Rule& r) { return check_limits(r, options.limits); });
}

Result<ast::Check> parse_check(std::string_view text, const ParseOptions& options) {
  return limited(run<ast::Check>(text, options, [](Parser& p) { return p.single_check(); }),
                 [&](const ast::Check& c) { return check_limits(c, options.limits); });
}

Result<ast::Policy> parse_policy(std::string_view text, const ParseOptions& options) {
  return limited(run<ast::Policy>(text, options, [](Parser& p) { return p.single_policy(); }),
                 [&](const ast::Policy& p) { return check_limits(p, options.limits); });
}

Result<ast::Expression> parse_expression(std::string_view text, const ParseOptions& options) {
  return limited(run<ast::Expression>(text, options, [](Parser& p) { return p.single_expression(); }),
                 [&](const ast::Expression& e) { return check_limits(e, options.limits); });
}

Result<ast::Term> parse_term(std::string_view text, const ParseOptions& options) {
  return limited(run<ast::Term>(text, options, [](Parser& p) { return p.single_term(); }),
                 [&](const ast::Term& t) { return check_limits(t, options.limits); });
}

Result<PublicKey> parse_public_key(std::string_view text) {
  ParseOptions options;
  return run<PublicKey>(text, options, [](Parser& p) {
    PublicKey k = p.public_key();
    p.end();
    return k;
  });
}

std::optional<uint64_t> parse_rfc3339(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)
  auto digits = [&](std::size_t at, std::size_t n, int& out) {
    if (at + n > s.size()) return false;
    int v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (!is_digit(s[at + i])) return false;
      v = v * 10 + (s[at + i] - '0');
    }
    out = v;
    return true;
  };
  int year, month, day, hour, minute, second;
  if (!digits(0, 4, year) || s.size() < 20 || s[4] != '-' || !digits(5, 2, month) || s[7] != '-' ||
      !digits(8, 2, day) || (s[10] != 'T' && s[10] != 't') || !digits(11, 2, hour) || s[13] != ':' ||
      !digits(14, 2, minute) || s[16] != ':' || !digits(17, 2, second)) {
    return std::nullopt;
  }
  std::size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    ++i;
    const std::size_t f = i;
    while (i < s.size() && is_digit(s[i])) ++i;
    if (i == f) return std::nullopt;
  }
  int64_t offset = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (!digits(i + 1, 2, oh) || i + 3 >= s.size() || s[i + 3] != ':' || !digits(i + 4, 2, om)) {
      return std::nullopt;
    }
    if (oh > 23 || om > 59) return std::nullopt;
    offset = (s[i] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  const std::chrono::year_month_day date{std::chrono::year(year),
                                         std::chrono::month(static_cast<unsigned>(month)),
                                         std::chrono::day(static_cast<unsigned>(day))};
  if (!date.ok() || hour > 23 || minute > 59 || second > 59) return std::nullopt;
  const int64_t ts = std::chrono::sys_days(date).time_since_epoch().count() * int64_t{86400} + hour * 3600 +
                     minute * 60 + second - offset;
  if (ts < 0) return std::nullopt;
  return static_cast<uint64_t>(ts);
}

}  // namespace biscuit::datalog
