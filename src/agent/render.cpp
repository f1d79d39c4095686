#include "agent/render.h"

#include <algorithm>
#include <cstdint>

namespace larder::agent {

using nlohmann::json;

namespace {

constexpr const char* kBold = "\x1b[1m";
constexpr const char* kDim = "\x1b[2m";
constexpr const char* kRed = "\x1b[31m";
constexpr const char* kGreen = "\x1b[32m";
constexpr const char* kCyan = "\x1b[36m";
constexpr const char* kReset = "\x1b[0m";

// Decodes one UTF-8 sequence at s[i]; invalid bytes come back as U+FFFD, one byte long.
char32_t decode(std::string_view s, size_t i, size_t* len) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  int n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) {
    *len = 1;
    return 0xFFFD;
  }
  char32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k < n; ++k) {
    unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) {
      *len = 1;
      return 0xFFFD;
    }
    cp = (cp << 6) | (cc & 0x3F);
  }
  static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    *len = 1;
    return 0xFFFD;
  }
  *len = static_cast<size_t>(n);
  return cp;
}

int char_width(char32_t cp) {
  if (cp == 0) return 0;
  if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0)) return 1;  // shown as U+FFFD by sanitize()
  if ((cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x1AB0 && cp <= 0x1AFF) || (cp >= 0x1DC0 && cp <= 0x1DFF) ||
      (cp >= 0x20D0 && cp <= 0x20FF) || (cp >= 0xFE20 && cp <= 0xFE2F) || (cp >= 0x200B && cp <= 0x200F) ||
      (cp >= 0xFE00 && cp <= 0xFE0F))
    return 0;
  if ((cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF && cp != 0x303F) ||
      (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFE30 && cp <= 0xFE4F) ||
      (cp >= 0xFF00 && cp <= 0xFF60) || (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
      (cp >= 0x1F900 && cp <= 0x1F9FF) || (cp >= 0x20000 && cp <= 0x3FFFD))
    return 2;
  return 1;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// One-line, terminal-safe cell text: newlines as "\n", other control characters (including
// ESC, so data cannot drive the terminal) and invalid UTF-8 as U+FFFD.
std::string sanitize(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    size_t len = 1;
    char32_t cp = decode(s, i, &len);
    if (cp == '\n')
      out += "\\n";
    else if (cp == '\t')
      out += ' ';
    else if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0))
      append_utf8(out, 0xFFFD);
    else
      append_utf8(out, cp);
    i += len;
  }
  return out;
}

std::string pad(const std::string& cell, size_t width, bool right) {
  size_t w = display_width(cell);
  std::string fill(width > w ? width - w : 0, ' ');
  return right ? fill + cell : cell + fill;
}

std::string paint(const std::string& text, const char* code, bool color) {
  return color ? std::string(code) + text + kReset : text;
}

// `text` with `prefix` painted when it starts with it (a wrapped message keeps its label).
std::string paint_prefix(const std::string& text, const std::string& prefix, const char* code, bool color) {
  if (!color || text.rfind(prefix, 0) != 0) return text;
  return paint(prefix, code, color) + text.substr(prefix.size());
}

bool numeric_type(const std::string& t) {
  static const char* kNumeric[] = {"int",  "numeric", "decimal", "float",  "double",
                                   "real", "money",   "serial",  "bigint", "smallint"};
  for (const char* n : kNumeric)
    if (t.find(n) != std::string::npos) return true;
  return false;
}

std::string cell_text(const json& v) {
  if (v.is_null()) return "NULL";
  if (v.is_string()) return v.get<std::string>();
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

size_t display_width(std::string_view s) {
  size_t w = 0;
  for (size_t i = 0; i < s.size();) {
    size_t len = 1;
    w += static_cast<size_t>(char_width(decode(s, i, &len)));
    i += len;
  }
  return w;
}

std::string truncate_to_width(std::string_view s, size_t width) {
  if (display_width(s) <= width) return std::string(s);
  if (width == 0) return "";
  std::string out;
  size_t w = 0;
  for (size_t i = 0; i < s.size();) {
    size_t len = 1;
    char32_t cp = decode(s, i, &len);
    int cw = char_width(cp);
    if (w + static_cast<size_t>(cw) > width - 1) break;  // keep one column for "…"
    append_utf8(out, cp);
    w += static_cast<size_t>(cw);
    i += len;
  }
  return out + "…";
}

namespace {

// One line (no '\n') word-wrapped to `width` columns.
std::string wrap_line(std::string_view line, size_t width) {
  if (display_width(line) <= width) return std::string(line);
  std::string out, cur;
  size_t cur_w = 0;
  auto flush = [&] {
    out += cur;
    out += '\n';
    cur.clear();
    cur_w = 0;
  };
  size_t i = 0;
  while (i < line.size()) {
    if (line[i] == ' ') {
      ++i;
      continue;
    }
    size_t end = line.find(' ', i);
    if (end == std::string_view::npos) end = line.size();
    std::string_view word = line.substr(i, end - i);
    i = end;
    size_t ww = display_width(word);
    if (cur_w > 0 && cur_w + 1 + ww > width) flush();
    if (ww > width) {  // longer than a line: break it between characters
      for (size_t k = 0; k < word.size();) {
        size_t len = 1;
        char32_t cp = decode(word, k, &len);
        size_t cw = static_cast<size_t>(char_width(cp));
        if (cur_w > 0 && cur_w + cw > width) flush();
        cur.append(word.substr(k, len));
        cur_w += cw;
        k += len;
      }
      continue;
    }
    if (cur_w > 0) {
      cur += ' ';
      ++cur_w;
    }
    cur.append(word);
    cur_w += ww;
  }
  out += cur;
  return out;
}

// Column widths that add up to at most `budget`: narrow columns keep their width, the wide
// ones share what is left equally.
std::vector<size_t> share_width(const std::vector<size_t>& natural, size_t budget) {
  std::vector<size_t> order(natural.size()), out(natural.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return natural[a] < natural[b]; });
  size_t remaining = budget, left = natural.size();
  for (size_t idx : order) {
    size_t w = std::min(natural[idx], remaining / left);
    out[idx] = w;
    remaining -= w;
    --left;
  }
  return out;
}

constexpr size_t kMinColumn = 4;  // narrower than this, a table is printed record by record

}  // namespace

std::string wrap_to_width(std::string_view s, size_t width) {
  if (width == 0) return std::string(s);
  std::string out;
  size_t start = 0;
  for (;;) {
    size_t nl = s.find('\n', start);
    out +=
        wrap_line(s.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start), width);
    if (nl == std::string_view::npos) break;
    out += '\n';
    start = nl + 1;
  }
  return out;
}

std::string render_table(const json& structured, const RenderOptions& options) {
  if (!structured.is_object() || !structured.contains("rows") || !structured["rows"].is_array()) return "";
  const json& rows = structured["rows"];
  std::vector<std::string> names, types;
  if (structured.contains("columns") && structured["columns"].is_array()) {
    for (const auto& c : structured["columns"]) {
      if (c.is_object()) {
        names.push_back(c.contains("name") && c["name"].is_string() ? c["name"].get<std::string>()
                                                                    : cell_text(c.value("name", json())));
        types.push_back(c.contains("type") && c["type"].is_string() ? c["type"].get<std::string>() : "");
      } else if (c.is_string()) {
        names.push_back(c.get<std::string>());
        types.emplace_back();
      }
    }
  }
  if (names.empty() && !rows.empty() && rows[0].is_object())
    for (auto it = rows[0].begin(); it != rows[0].end(); ++it) {
      names.push_back(it.key());
      types.emplace_back();
    }
  const size_t ncol = names.size();
  const size_t cap = options.max_column_width == 0 ? static_cast<size_t>(-1) : options.max_column_width;
  std::vector<std::vector<std::string>> cells;
  std::vector<std::vector<bool>> is_null;
  std::vector<bool> right(ncol, false);
  for (size_t c = 0; c < ncol; ++c) right[c] = numeric_type(types[c]);
  for (const auto& row : rows) {
    std::vector<std::string> line(ncol);
    std::vector<bool> nulls(ncol, false);
    for (size_t c = 0; c < ncol; ++c) {
      json v;
      if (row.is_object() && row.contains(names[c]))
        v = row[names[c]];
      else if (row.is_array() && c < row.size())
        v = row[c];
      if (types[c].empty() && v.is_number()) right[c] = true;
      nulls[c] = v.is_null();
      line[c] = sanitize(cell_text(v));
    }
    cells.push_back(std::move(line));
    is_null.push_back(std::move(nulls));
  }
  std::vector<std::string> headers(ncol);
  std::vector<size_t> width(ncol, 0);
  for (size_t c = 0; c < ncol; ++c) {
    headers[c] = sanitize(names[c]);
    width[c] = std::min(cap, display_width(headers[c]));
    for (const auto& line : cells) width[c] = std::max(width[c], std::min(cap, display_width(line[c])));
  }
  // The widest line is the rule under the header: 1 + Σwidth + 3·(ncol−1) + 1.
  bool records = false;
  if (options.width > 0 && ncol > 0) {
    size_t total = 3 * ncol - 1;
    for (size_t w : width) total += w;
    if (total > options.width) {
      size_t overhead = 3 * ncol - 1;
      if (options.width < overhead + kMinColumn * ncol)
        records = true;
      else
        width = share_width(width, options.width - overhead);
    }
  }
  std::string out;
  if (records) {
    // Record by record: " column | value", the value cut to what the line leaves.
    size_t label = 0;
    for (const auto& h : headers) label = std::max(label, display_width(h));
    label = std::min(label, std::max<size_t>(options.width / 3, 1));
    size_t value = options.width > label + 4 ? options.width - label - 4 : 1;
    for (size_t r = 0; r < cells.size(); ++r) {
      std::string rule = "-[ record " + std::to_string(r + 1) + " ]";
      rule = rule.size() > options.width ? rule.substr(0, options.width)
                                         : rule + std::string(options.width - rule.size(), '-');
      out += rule + "\n";
      for (size_t c = 0; c < ncol; ++c) {
        std::string text = truncate_to_width(cells[r][c], value);
        out += " " + paint(pad(truncate_to_width(headers[c], label), label, false), kBold, options.color) +
               " | " + (is_null[r][c] ? paint(text, kDim, options.color) : text);
        while (!out.empty() && out.back() == ' ') out.pop_back();
        out += "\n";
      }
    }
  } else if (ncol > 0) {
    for (size_t c = 0; c < ncol; ++c) {
      headers[c] = truncate_to_width(headers[c], width[c]);
      for (auto& line : cells) line[c] = truncate_to_width(line[c], width[c]);
    }
    for (size_t c = 0; c < ncol; ++c) {
      out += c ? " | " : " ";
      out += paint(pad(headers[c], width[c], false), kBold, options.color);
    }
    out += "\n";
    for (size_t c = 0; c < ncol; ++c) out += (c ? "-+-" : "-") + std::string(width[c], '-');
    out += "-\n";
    for (size_t r = 0; r < cells.size(); ++r) {
      for (size_t c = 0; c < ncol; ++c) {
        out += c ? " | " : " ";
        std::string text = pad(cells[r][c], width[c], right[c]);
        out += is_null[r][c] ? paint(text, kDim, options.color) : text;
      }
      // trailing spaces of the last column are noise
      while (!out.empty() && out.back() == ' ') out.pop_back();
      out += "\n";
    }
  }
  long long count = structured.contains("row_count") && structured["row_count"].is_number_integer()
                        ? structured["row_count"].get<long long>()
                        : static_cast<long long>(rows.size());
  out += "(" + std::to_string(count) + (count == 1 ? " row" : " rows");
  bool truncated = structured.contains("truncated") && structured["truncated"].is_boolean() &&
                   structured["truncated"].get<bool>();
  if (truncated) out += "; truncated by the server: showing " + std::to_string(rows.size());
  out += ")";
  size_t footer = out.rfind('\n');
  footer = footer == std::string::npos ? 0 : footer + 1;
  out = out.substr(0, footer) + wrap_to_width(std::string_view(out).substr(footer), options.width) + "\n";
  return out;
}

std::string render_run(const AgentRun& run, const RenderOptions& options) {
  std::string out;
  const bool color = options.color;
  for (const auto& step : run.steps) {
    std::string label = step.tool.empty() ? step.model_name : step.server + "/" + step.tool;
    if (options.verbose) {
      out += paint("→ " + label, kCyan, color) + " " +
             sanitize(step.arguments.dump(-1, ' ', false, json::error_handler_t::replace)) + "\n";
      for (const auto& d : step.decisions) {
        bool allowed = d.decision == "allow" || d.decision == "allowed" || d.decision == "pass";
        out +=
            "  lock " + sanitize(d.lock) + ": " + paint(sanitize(d.decision), allowed ? kGreen : kRed, color);
        if (!d.reason.empty()) out += " — " + sanitize(d.reason);
        out += "\n";
      }
      if (step.token_switched) out += "  token: switched to the attenuated token the server returned\n";
    }
    if (options.show_sql && step.sql)
      out += paint("SQL (" + label + "):", kBold, color) + "\n" + *step.sql + "\n";
    if (step.is_error) {
      out += paint_prefix(wrap_to_width("error from " + label + ": " + step.text, options.width),
                          "error from " + label + ":", kRed, color) +
             "\n";
    } else {
      std::string table = render_table(step.structured, options);
      if (!table.empty())
        out += table;
      else if (options.verbose)
        out += step.text + "\n";
    }
    if (options.show_sql || options.verbose || !step.structured.is_null() || step.is_error) out += "\n";
  }
  if (!run.answer.empty()) out += wrap_to_width(run.answer, options.width) + "\n";
  switch (run.status) {
    case AgentStatus::Answered:
      break;
    case AgentStatus::MaxTokens:
      out +=
          paint("(the model stopped at its output limit; the answer may be incomplete)", kRed, color) + "\n";
      break;
    case AgentStatus::Refused:
      out += paint("(the model refused to answer)", kRed, color) + "\n";
      break;
    case AgentStatus::Cancelled:
      out += paint("(cancelled)", kRed, color) + "\n";
      break;
    default:
      if (run.error)
        out += paint(wrap_to_width("error: " + run.error->message, options.width), kRed, color) + "\n";
  }
  return out;
}

json run_to_json(const AgentRun& run) {
  json steps = json::array();
  for (const auto& s : run.steps) {
    json d = json::array();
    for (const auto& x : s.decisions)
      d.push_back({{"lock", x.lock}, {"decision", x.decision}, {"reason", x.reason}});
    json step{
        {"server", s.server},     {"tool", s.tool}, {"arguments", s.arguments},          {"called", s.called},
        {"is_error", s.is_error}, {"decisions", d}, {"token_switched", s.token_switched}};
    step["sql"] = s.sql ? json(*s.sql) : json(nullptr);
    if (!s.structured.is_null())
      step["result"] = s.structured;
    else
      step["text"] = s.text;
    if (s.is_error) step["error"] = s.text;
    steps.push_back(std::move(step));
  }
  json out{{"status", to_string(run.status)},
           {"answer", run.answer},
           {"steps", steps},
           {"model_turns", run.model_turns},
           {"usage", {{"input_tokens", run.usage.input_tokens}, {"output_tokens", run.usage.output_tokens}}}};
  if (run.error) out["error"] = {{"code", run.error->code}, {"message", run.error->message}};
  return out;
}

}  // namespace larder::agent
