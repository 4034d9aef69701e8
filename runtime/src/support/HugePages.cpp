//===- HugePages.cpp - 2 MiB pages: the switch and the account ------------===//
#include "support/HugePages.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace dsrt;

bool dsrt::hugePagesAllowed() {
  const char *v = std::getenv("DSRT_HUGE_PAGES");
  return !(v && v[0] == '0' && v[1] == '\0');
}

namespace {

bool parseHex(std::string_view s, uintptr_t &out) {
  if (s.empty() || s.size() > 16)
    return false;
  uintptr_t v = 0;
  for (char c : s) {
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                   : -1;
    if (d < 0)
      return false;
    v = v * 16 + uintptr_t(d);
  }
  out = v;
  return true;
}

/// "start-end ..." (a mapping's header line) into [start, end).
bool parseHeader(std::string_view line, uintptr_t &start, uintptr_t &end) {
  size_t dash = line.find('-'), space = line.find(' ');
  if (dash == std::string_view::npos || space == std::string_view::npos ||
      dash > space)
    return false;
  return parseHex(line.substr(0, dash), start) &&
         parseHex(line.substr(dash + 1, space - dash - 1), end) && start < end;
}

/// Takes the next line off the front of `text`.
std::string_view nextLine(std::string_view &text) {
  size_t eol = text.find('\n');
  std::string_view line = text.substr(0, eol);
  text =
      eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
  return line;
}

/// Where `line` is field `name` ("Name: value"), the text after the colon;
/// false otherwise.
bool fieldValue(std::string_view line, std::string_view name,
                std::string_view &value) {
  if (line.size() <= name.size() || line.substr(0, name.size()) != name ||
      line[name.size()] != ':')
    return false;
  value = line.substr(name.size() + 1);
  return true;
}

/// "Name:   123 kB" into bytes, where the line is field `name`.
bool parseKb(std::string_view line, std::string_view name, int64_t &bytes) {
  std::string_view value;
  if (!fieldValue(line, name, value))
    return false;
  int64_t kb = 0;
  bool digits = false;
  for (char c : value) {
    if (c >= '0' && c <= '9') {
      kb = kb * 10 + (c - '0');
      digits = true;
    } else if (digits) {
      break;
    }
  }
  bytes = kb * 1024;
  return digits;
}

} // namespace

void dsrt::accountPages(std::string_view smaps,
                        std::vector<PageAccount> &ranges) {
  for (PageAccount &r : ranges)
    r.residentBytes = r.hugeBytes = 0;
  PageAccount *current = nullptr;
  while (!smaps.empty()) {
    std::string_view line = nextLine(smaps);
    uintptr_t start = 0, end = 0;
    if (parseHeader(line, start, end)) {
      current = nullptr;
      for (PageAccount &r : ranges)
        if (start >= r.begin && end - r.begin <= r.size)
          current = &r;
      continue;
    }
    if (!current)
      continue;
    int64_t bytes = 0;
    if (parseKb(line, "Rss", bytes))
      current->residentBytes += bytes;
    else if (parseKb(line, "FilePmdMapped", bytes) ||
             parseKb(line, "AnonHugePages", bytes))
      current->hugeBytes += bytes;
  }
}

namespace {

/// This process's /proc/self/smaps; false where it cannot be read.
bool readSmaps(std::string &text) {
  std::ifstream in("/proc/self/smaps");
  if (!in)
    return false;
  std::ostringstream all;
  all << in.rdbuf();
  text = all.str();
  return true;
}

} // namespace

bool dsrt::accountPages(std::vector<PageAccount> &ranges) {
  std::string text;
  bool ok = readSmaps(text);
  accountPages(text, ranges); // every count zero where the text is empty
  return ok;
}

std::string dsrt::mappingField(std::string_view smaps, uintptr_t address,
                               std::string_view name) {
  bool inside = false;
  while (!smaps.empty()) {
    std::string_view line = nextLine(smaps), value;
    uintptr_t start = 0, end = 0;
    if (parseHeader(line, start, end)) {
      inside = start <= address && address < end;
      continue;
    }
    if (!inside || !fieldValue(line, name, value))
      continue;
    size_t v = value.find_first_not_of(" \t");
    return v == std::string_view::npos ? std::string()
                                       : std::string(value.substr(v));
  }
  return "";
}

std::string dsrt::mappingField(const void *address, std::string_view name) {
  std::string text;
  if (!readSmaps(text))
    return "";
  return mappingField(text, reinterpret_cast<uintptr_t>(address), name);
}
