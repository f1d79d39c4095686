// Internal to the SQL guard: a small read-only JSON document for libpg_query's parse tree.
//
// Why not nlohmann::json: building its DOM (a std::map and heap strings per node) cost more
// than parsing the SQL itself. This reader keeps every value in one vector, keeps object
// members in document order, points into the input text for strings without escapes, and
// refuses input nested deeper than a limit instead of recursing without bound.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace larder::db::guard_tree {

class Document;

class Value {
 public:
  enum class Kind : std::uint8_t { kNull, kBool, kInteger, kNumber, kString, kArray, kObject };

  Kind kind() const { return kind_; }
  bool is_object() const { return kind_ == Kind::kObject; }
  bool is_array() const { return kind_ == Kind::kArray; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_integer() const { return kind_ == Kind::kInteger; }
  bool is_bool() const { return kind_ == Kind::kBool; }

  std::string_view str() const { return text_; }     // kString only (empty otherwise)
  bool boolean() const { return integer_ != 0; }     // kBool only
  std::int64_t integer() const { return integer_; }  // kInteger only

  // Arrays and objects: number of elements / members.
  std::size_t size() const { return count_; }

  // Context needed to reach children, which live in the Document.
  friend class Document;

 private:
  Kind kind_ = Kind::kNull;
  std::int64_t integer_ = 0;
  std::string_view text_;
  std::uint32_t first_ = 0;  // index of the first child in Document::members_
  std::uint32_t count_ = 0;
};

class Document {
 public:
  Document() = default;
  // Values point into text_, so a Document stays where it was built.
  Document(const Document&) = delete;
  Document& operator=(const Document&) = delete;

  // Parses `text` (copied). Returns false, with error(), on malformed JSON or when arrays and
  // objects nest deeper than `max_depth`.
  bool parse(std::string text, int max_depth);
  const std::string& error() const { return error_; }
  bool too_deep() const { return too_deep_; }

  const Value& root() const { return values_[root_]; }

  // Children of an array or object, in document order. key() is empty for array elements.
  const Value& child(const Value& v, std::size_t i) const { return values_[members_[v.first_ + i].value]; }
  std::string_view key(const Value& v, std::size_t i) const { return members_[v.first_ + i].key; }
  // Object member by key, or nullptr.
  const Value* find(const Value& v, std::string_view key) const;

 private:
  struct Member {
    std::string_view key;
    std::uint32_t value;
  };

  bool fail(const char* what);
  void skip_ws();
  bool parse_value(int depth, std::uint32_t* out);
  bool parse_string(std::string_view* out);
  bool parse_number(Value* v);

  std::string text_;
  std::size_t pos_ = 0;
  int max_depth_ = 0;
  std::vector<Value> values_;
  std::vector<Member> members_;
  std::vector<Member> scratch_;        // children of containers still being parsed
  std::deque<std::string> unescaped_;  // strings that had escapes (stable addresses)
  std::uint32_t root_ = 0;
  std::string error_;
  bool too_deep_ = false;
};

}  // namespace larder::db::guard_tree
