#include "db/sql_guard_tree.h"

#include <charconv>
#include <limits>

namespace larder::db::guard_tree {

namespace {

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

const Value* Document::find(const Value& v, std::string_view key) const {
  if (v.kind_ != Value::Kind::kObject) return nullptr;
  for (std::uint32_t i = 0; i < v.count_; ++i) {
    const Member& m = members_[v.first_ + i];
    if (m.key == key) return &values_[m.value];
  }
  return nullptr;
}

bool Document::fail(const char* what) {
  if (error_.empty()) error_ = std::string(what) + " at offset " + std::to_string(pos_);
  return false;
}

void Document::skip_ws() {
  while (pos_ < text_.size() &&
         (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\r' || text_[pos_] == '\t')) {
    ++pos_;
  }
}

bool Document::parse(std::string text, int max_depth) {
  text_ = std::move(text);
  pos_ = 0;
  max_depth_ = max_depth;
  values_.clear();
  members_.clear();
  scratch_.clear();
  unescaped_.clear();
  error_.clear();
  too_deep_ = false;
  values_.reserve(text_.size() / 8 + 16);
  members_.reserve(text_.size() / 8 + 16);
  if (!parse_value(0, &root_)) return false;
  skip_ws();
  if (pos_ != text_.size()) return fail("trailing characters");
  return true;
}

bool Document::parse_string(std::string_view* out) {
  // pos_ is on the opening quote.
  const std::size_t start = ++pos_;
  while (pos_ < text_.size() && text_[pos_] != '"' && text_[pos_] != '\\') {
    if (static_cast<unsigned char>(text_[pos_]) < 0x20) return fail("control character in string");
    ++pos_;
  }
  if (pos_ >= text_.size()) return fail("unterminated string");
  if (text_[pos_] == '"') {
    *out = std::string_view(text_).substr(start, pos_ - start);
    ++pos_;
    return true;
  }
  // Slow path: the string has escapes.
  std::string s(text_, start, pos_ - start);
  while (pos_ < text_.size()) {
    const char c = text_[pos_];
    if (c == '"') {
      ++pos_;
      unescaped_.push_back(std::move(s));
      *out = unescaped_.back();
      return true;
    }
    if (static_cast<unsigned char>(c) < 0x20) return fail("control character in string");
    if (c != '\\') {
      s += c;
      ++pos_;
      continue;
    }
    if (++pos_ >= text_.size()) break;
    const char e = text_[pos_++];
    switch (e) {
      case '"':
        s += '"';
        break;
      case '\\':
        s += '\\';
        break;
      case '/':
        s += '/';
        break;
      case 'b':
        s += '\b';
        break;
      case 'f':
        s += '\f';
        break;
      case 'n':
        s += '\n';
        break;
      case 'r':
        s += '\r';
        break;
      case 't':
        s += '\t';
        break;
      case 'u': {
        auto read4 = [&](std::uint32_t* cp) {
          if (pos_ + 4 > text_.size()) return false;
          std::uint32_t v = 0;
          for (int k = 0; k < 4; ++k) {
            const int d = hex_digit(text_[pos_ + static_cast<std::size_t>(k)]);
            if (d < 0) return false;
            v = (v << 4) | static_cast<std::uint32_t>(d);
          }
          pos_ += 4;
          *cp = v;
          return true;
        };
        std::uint32_t cp = 0;
        if (!read4(&cp)) return fail("bad \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          std::uint32_t low = 0;
          if (pos_ + 2 > text_.size() || text_[pos_] != '\\' || text_[pos_ + 1] != 'u') {
            return fail("unpaired surrogate");
          }
          pos_ += 2;
          if (!read4(&low) || low < 0xDC00 || low > 0xDFFF) return fail("unpaired surrogate");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return fail("unpaired surrogate");
        }
        append_utf8(s, cp);
        break;
      }
      default:
        return fail("bad escape");
    }
  }
  return fail("unterminated string");
}

bool Document::parse_number(Value* v) {
  const std::size_t start = pos_;
  if (pos_ < text_.size() && text_[pos_] == '-') ++pos_;
  bool integral = true;
  while (pos_ < text_.size()) {
    const char c = text_[pos_];
    if (c >= '0' && c <= '9') {
      ++pos_;
    } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
      integral = false;
      ++pos_;
    } else {
      break;
    }
  }
  const std::string_view digits = std::string_view(text_).substr(start, pos_ - start);
  if (digits.empty() || digits == "-") return fail("bad number");
  v->text_ = digits;
  if (integral) {
    std::int64_t n = 0;
    const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec == std::errc() && p == digits.data() + digits.size()) {
      v->kind_ = Value::Kind::kInteger;
      v->integer_ = n;
      return true;
    }
  }
  v->kind_ = Value::Kind::kNumber;  // fraction, exponent or out of int64 range
  return true;
}

bool Document::parse_value(int depth, std::uint32_t* out) {
  skip_ws();
  if (pos_ >= text_.size()) return fail("unexpected end");
  if (values_.size() >= std::numeric_limits<std::uint32_t>::max()) return fail("too many values");
  const auto index = static_cast<std::uint32_t>(values_.size());
  values_.emplace_back();
  *out = index;
  const char c = text_[pos_];

  if (c == '{' || c == '[') {
    if (depth + 1 > max_depth_) {
      too_deep_ = true;
      return fail("nesting too deep");
    }
    const bool object = c == '{';
    const char close = object ? '}' : ']';
    ++pos_;
    const std::size_t mark = scratch_.size();
    skip_ws();
    if (pos_ < text_.size() && text_[pos_] == close) {
      ++pos_;
    } else {
      while (true) {
        Member m{};
        skip_ws();
        if (object) {
          if (pos_ >= text_.size() || text_[pos_] != '"') return fail("expected key");
          if (!parse_string(&m.key)) return false;
          skip_ws();
          if (pos_ >= text_.size() || text_[pos_] != ':') return fail("expected ':'");
          ++pos_;
        }
        if (!parse_value(depth + 1, &m.value)) return false;
        scratch_.push_back(m);
        skip_ws();
        if (pos_ < text_.size() && text_[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (pos_ < text_.size() && text_[pos_] == close) {
          ++pos_;
          break;
        }
        return fail("expected ',' or closing bracket");
      }
    }
    Value& v = values_[index];
    v.kind_ = object ? Value::Kind::kObject : Value::Kind::kArray;
    v.first_ = static_cast<std::uint32_t>(members_.size());
    v.count_ = static_cast<std::uint32_t>(scratch_.size() - mark);
    members_.insert(members_.end(), scratch_.begin() + static_cast<std::ptrdiff_t>(mark), scratch_.end());
    scratch_.resize(mark);
    return true;
  }
  if (c == '"') {
    std::string_view s;
    if (!parse_string(&s)) return false;
    values_[index].kind_ = Value::Kind::kString;
    values_[index].text_ = s;
    return true;
  }
  if (c == '-' || (c >= '0' && c <= '9')) return parse_number(&values_[index]);
  const std::string_view rest = std::string_view(text_).substr(pos_);
  if (rest.substr(0, 4) == "true") {
    pos_ += 4;
    values_[index].kind_ = Value::Kind::kBool;
    values_[index].integer_ = 1;
    return true;
  }
  if (rest.substr(0, 5) == "false") {
    pos_ += 5;
    values_[index].kind_ = Value::Kind::kBool;
    return true;
  }
  if (rest.substr(0, 4) == "null") {
    pos_ += 4;
    return true;
  }
  return fail("unexpected character");
}

}  // namespace larder::db::guard_tree
