#include "biscuit/datalog/types.h"

#include <algorithm>

namespace biscuit::datalog {

namespace {

template <class T>
int cmp3(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

int compare_terms(const std::vector<Term>& a, const std::vector<Term>& b) {
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (int c = compare(a[i], b[i]); c != 0) return c;
  }
  return cmp3(a.size(), b.size());
}

int compare_key(const MapKey& a, const MapKey& b) {
  if (a.kind != b.kind) return a.kind < b.kind ? -1 : 1;
  return a.kind == MapKey::Kind::Integer ? cmp3(a.integer, b.integer) : cmp3(a.string, b.string);
}

inline uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h;
}

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

constexpr std::array<std::string_view, 28> kDefaultSymbols = {
    "read",  "write",   "resource",  "operation",  "right",    "time",      "role",
    "owner", "tenant",  "namespace", "user",       "team",     "service",   "admin",
    "email", "group",   "member",    "ip_address", "client",   "client_ip", "domain",
    "path",  "version", "cluster",   "node",       "hostname", "nonce",     "query"};

std::optional<SymbolIndex> default_index(std::string_view s) {
  static const std::unordered_map<std::string_view, SymbolIndex> index = [] {
    std::unordered_map<std::string_view, SymbolIndex> m;
    for (std::size_t i = 0; i < kDefaultSymbols.size(); ++i)
      m.emplace(kDefaultSymbols[i], static_cast<SymbolIndex>(i));
    return m;
  }();
  if (auto it = index.find(s); it != index.end()) return it->second;
  return std::nullopt;
}

}  // namespace

Term Term::set(std::vector<Term> items) {
  std::sort(items.begin(), items.end(), [](const Term& a, const Term& b) { return compare(a, b) < 0; });
  items.erase(std::unique(items.begin(), items.end(),
                          [](const Term& a, const Term& b) { return compare(a, b) == 0; }),
              items.end());
  return Term{term_detail::Set{std::move(items)}};
}

Term Term::map(std::vector<std::pair<MapKey, Term>> entries) {
  // Stable sort, then keep the last of each run of equal keys (BTreeMap insert semantics).
  std::stable_sort(entries.begin(), entries.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<MapKey, Term>> out;
  out.reserve(entries.size());
  for (auto& e : entries) {
    if (!out.empty() && out.back().first == e.first) {
      out.back().second = std::move(e.second);
    } else {
      out.push_back(std::move(e));
    }
  }
  return Term{term_detail::Map{std::move(out)}};
}

bool Term::contains_variable() const {
  switch (kind()) {
    case TermKind::Variable:
      return true;
    case TermKind::Set:
      for (const auto& t : as_set())
        if (t.contains_variable()) return true;
      return false;
    case TermKind::Array:
      for (const auto& t : as_array())
        if (t.contains_variable()) return true;
      return false;
    case TermKind::Map:
      for (const auto& e : as_map())
        if (e.second.contains_variable()) return true;
      return false;
    default:
      return false;
  }
}

int compare(const Term& a, const Term& b) {
  if (a.v.index() != b.v.index()) return a.v.index() < b.v.index() ? -1 : 1;
  switch (a.kind()) {
    case TermKind::Variable:
      return cmp3(a.as_variable(), b.as_variable());
    case TermKind::Integer:
      return cmp3(a.as_integer(), b.as_integer());
    case TermKind::String:
      return cmp3(a.as_string(), b.as_string());
    case TermKind::Date:
      return cmp3(a.as_date(), b.as_date());
    case TermKind::Bytes:
      return cmp3(a.as_bytes(), b.as_bytes());
    case TermKind::Bool:
      return cmp3(a.as_bool(), b.as_bool());
    case TermKind::Set:
      return compare_terms(a.as_set(), b.as_set());
    case TermKind::Null:
      return 0;
    case TermKind::Array:
      return compare_terms(a.as_array(), b.as_array());
    case TermKind::Map: {
      const auto& x = a.as_map();
      const auto& y = b.as_map();
      const std::size_t n = std::min(x.size(), y.size());
      for (std::size_t i = 0; i < n; ++i) {
        if (int c = compare_key(x[i].first, y[i].first); c != 0) return c;
        if (int c = compare(x[i].second, y[i].second); c != 0) return c;
      }
      return cmp3(x.size(), y.size());
    }
  }
  return 0;
}

uint64_t hash_term(const Term& t) {
  uint64_t h = mix64(t.v.index() + 1);
  switch (t.kind()) {
    case TermKind::Variable:
      return mix(h, mix64(t.as_variable()));
    case TermKind::Integer:
      return mix(h, mix64(static_cast<uint64_t>(t.as_integer())));
    case TermKind::String:
      return mix(h, mix64(t.as_string()));
    case TermKind::Date:
      return mix(h, mix64(t.as_date()));
    case TermKind::Bytes:
      for (uint8_t b : t.as_bytes()) h = mix(h, b);
      return mix(h, t.as_bytes().size());
    case TermKind::Bool:
      return mix(h, t.as_bool() ? 2 : 1);
    case TermKind::Set:
      for (const auto& e : t.as_set()) h = mix(h, hash_term(e));
      return h;
    case TermKind::Null:
      return h;
    case TermKind::Array:
      for (const auto& e : t.as_array()) h = mix(h, hash_term(e));
      return h;
    case TermKind::Map:
      for (const auto& e : t.as_map()) {
        h = mix(h, static_cast<uint64_t>(e.first.kind));
        h = mix(h, e.first.kind == MapKey::Kind::Integer ? static_cast<uint64_t>(e.first.integer)
                                                         : e.first.string);
        h = mix(h, hash_term(e.second));
      }
      return h;
  }
  return h;
}

std::size_t term_bytes(const Term& t) {
  std::size_t n = sizeof(Term);
  switch (t.kind()) {
    case TermKind::Bytes:
      return n + t.as_bytes().size();
    case TermKind::Set:
      for (const auto& e : t.as_set()) n += term_bytes(e);
      return n;
    case TermKind::Array:
      for (const auto& e : t.as_array()) n += term_bytes(e);
      return n;
    case TermKind::Map:
      for (const auto& [k, v] : t.as_map()) n += sizeof(MapKey) + term_bytes(v);
      return n;
    default:
      return n;
  }
}

bool operator==(const Closure& a, const Closure& b) {
  return a.params == b.params && a.ops == b.ops;
}

bool operator==(const Op& a, const Op& b) {
  if (a.v.index() != b.v.index()) return false;
  switch (a.v.index()) {
    case 0:
      return std::get<0>(a.v) == std::get<0>(b.v);
    case 1:
      return std::get<1>(a.v) == std::get<1>(b.v);
    case 2:
      return std::get<2>(a.v) == std::get<2>(b.v);
    default:
      return std::get<3>(a.v) == std::get<3>(b.v);
  }
}

std::string PublicKey::print() const {
  static const char* digits = "0123456789abcdef";
  std::string out = algorithm == Algorithm::Ed25519 ? "ed25519/" : "secp256r1/";
  for (uint8_t b : key) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

// ------------------------------------------------------------------------ SymbolTable

const std::array<std::string_view, 28>& SymbolTable::default_symbols() {
  return kDefaultSymbols;
}

SymbolIndex SymbolTable::insert(std::string_view s) {
  if (auto d = default_index(s)) return *d;
  if (auto it = index_.find(s); it != index_.end()) return it->second;
  SymbolIndex id = kOffset + symbols_.size();
  symbols_.emplace_back(s);
  index_.emplace(std::string(s), id);
  return id;
}

std::optional<SymbolIndex> SymbolTable::get(std::string_view s) const {
  if (auto d = default_index(s)) return d;
  if (auto it = index_.find(s); it != index_.end()) return it->second;
  return std::nullopt;
}

std::optional<std::string_view> SymbolTable::lookup(SymbolIndex id) const {
  if (id < kDefaultSymbols.size()) return kDefaultSymbols[id];
  if (id >= kOffset && id - kOffset < symbols_.size()) return std::string_view(symbols_[id - kOffset]);
  return std::nullopt;
}

std::string SymbolTable::print_symbol(SymbolIndex id) const {
  if (auto s = lookup(id)) return std::string(*s);
  return "<" + std::to_string(id) + "?>";
}

std::vector<std::string> SymbolTable::symbols_since(std::size_t offset) const {
  if (offset >= symbols_.size()) return {};
  return std::vector<std::string>(symbols_.begin() + static_cast<std::ptrdiff_t>(offset), symbols_.end());
}

bool SymbolTable::extend(const std::vector<std::string>& block_symbols) {
  std::unordered_map<std::string, SymbolIndex> added;
  for (const auto& s : block_symbols) {
    if (default_index(s) || index_.count(s) || added.count(s)) return false;
    added.emplace(s, 0);
  }
  for (const auto& s : block_symbols) {
    index_.emplace(s, kOffset + symbols_.size());
    symbols_.push_back(s);
  }
  return true;
}

void SymbolTable::truncate(std::size_t offset) {
  while (symbols_.size() > offset) {
    index_.erase(symbols_.back());
    symbols_.pop_back();
  }
}

uint64_t SymbolTable::insert_key(const PublicKey& key) {
  if (auto i = find_key(key)) return *i;
  keys_.push_back(key);
  return keys_.size() - 1;
}

std::optional<uint64_t> SymbolTable::find_key(const PublicKey& key) const {
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i] == key) return i;
  }
  return std::nullopt;
}

const PublicKey* SymbolTable::key(uint64_t index) const {
  return index < keys_.size() ? &keys_[index] : nullptr;
}

std::vector<PublicKey> SymbolTable::keys_since(std::size_t offset) const {
  if (offset >= keys_.size()) return {};
  return std::vector<PublicKey>(keys_.begin() + static_cast<std::ptrdiff_t>(offset), keys_.end());
}

bool SymbolTable::extend_keys(const std::vector<PublicKey>& block_keys) {
  for (std::size_t i = 0; i < block_keys.size(); ++i) {
    if (find_key(block_keys[i])) return false;
    for (std::size_t j = 0; j < i; ++j) {
      if (block_keys[j] == block_keys[i]) return false;
    }
  }
  keys_.insert(keys_.end(), block_keys.begin(), block_keys.end());
  return true;
}

void SymbolTable::truncate_keys(std::size_t offset) {
  if (keys_.size() > offset) keys_.resize(offset);
}

// ------------------------------------------------------------------- TemporarySymbols

SymbolIndex TemporarySymbols::insert(std::string_view s) {
  if (auto id = base_.get(s)) return *id;
  if (auto it = index_.find(s); it != index_.end()) return it->second;
  return add(std::string(s));
}

SymbolIndex TemporarySymbols::insert_owned(std::string s) {
  if (auto id = base_.get(s)) return *id;
  if (auto it = index_.find(s); it != index_.end()) return it->second;
  return add(std::move(s));
}

SymbolIndex TemporarySymbols::add(std::string s) {
  const SymbolIndex id = offset_ + extra_.size();
  bytes_ += s.size();
  extra_.push_back(std::make_unique<const std::string>(std::move(s)));
  index_.emplace(std::string_view(*extra_.back()), id);
  return id;
}

std::optional<std::string_view> TemporarySymbols::lookup(SymbolIndex id) const {
  if (id >= offset_ && id - offset_ < extra_.size()) return std::string_view(*extra_[id - offset_]);
  return base_.lookup(id);
}

}  // namespace biscuit::datalog
