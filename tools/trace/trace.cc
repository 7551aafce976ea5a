#include "tools/trace/trace.h"

#include <cctype>
#include <cstdlib>
#include <fstream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace kvcache {
namespace {

// A cursor over one line of the trace's flat JSON objects.
class Cursor {
 public:
  explicit Cursor(const std::string& s) : s_(s) {}
  void SkipSpace() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool Eat(char c) {
    SkipSpace();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool String(std::string* out) {
    if (!Eat('"')) return false;
    const size_t end = s_.find('"', i_);
    if (end == std::string::npos) return false;
    *out = s_.substr(i_, end - i_);
    i_ = end + 1;
    return true;
  }
  bool Number(double* out) {
    SkipSpace();
    const char* begin = s_.c_str() + i_;
    char* end = nullptr;
    *out = std::strtod(begin, &end);
    if (end == begin) return false;
    i_ += static_cast<size_t>(end - begin);
    return true;
  }
  // Skips one value of a key we do not use (a number, string, or flat array).
  bool SkipValue() {
    SkipSpace();
    std::string ignored;
    double number;
    if (i_ < s_.size() && s_[i_] == '"') return String(&ignored);
    if (Eat('[')) {
      if (Eat(']')) return true;
      do {
        if (!SkipValue()) return false;
      } while (Eat(','));
      return Eat(']');
    }
    if (s_.compare(i_, 4, "true") == 0 || s_.compare(i_, 4, "null") == 0) return i_ += 4, true;
    if (s_.compare(i_, 5, "false") == 0) return i_ += 5, true;
    return Number(&number);
  }
  bool AtEnd() {
    SkipSpace();
    return i_ == s_.size();
  }

 private:
  const std::string& s_;
  size_t i_ = 0;
};

bool IsCount(double v) { return v >= 0 && v <= 9.007199254740992e15 && v == static_cast<int64_t>(v); }

}  // namespace

absl::StatusOr<TraceRequest> ParseTraceLine(const std::string& line) {
  Cursor c(line);
  TraceRequest r;
  bool has_timestamp = false, has_ids = false;
  if (!c.Eat('{')) return absl::InvalidArgumentError("not a JSON object");
  if (!c.Eat('}')) {
    do {
      std::string key;
      if (!c.String(&key) || !c.Eat(':')) return absl::InvalidArgumentError("expected \"key\":");
      double v = 0;
      if (key == "hash_ids") {
        if (!c.Eat('[')) return absl::InvalidArgumentError("hash_ids is not an array");
        if (!c.Eat(']')) {
          do {
            if (!c.Number(&v) || !IsCount(v)) {
              return absl::InvalidArgumentError("hash_ids holds a non-integer");
            }
            r.hash_ids.push_back(static_cast<uint64_t>(v));
          } while (c.Eat(','));
          if (!c.Eat(']')) return absl::InvalidArgumentError("hash_ids is not closed");
        }
        has_ids = true;
      } else if (key == "timestamp" || key == "input_length" || key == "output_length") {
        if (!c.Number(&v) || !IsCount(v)) {
          return absl::InvalidArgumentError(absl::StrCat(key, " is not a whole number >= 0"));
        }
        int64_t* field = key == "timestamp"      ? &r.timestamp_ms
                         : key == "input_length" ? &r.input_length
                                                 : &r.output_length;
        *field = static_cast<int64_t>(v);
        has_timestamp |= key == "timestamp";
      } else if (!c.SkipValue()) {
        return absl::InvalidArgumentError(absl::StrCat("cannot read the value of ", key));
      }
    } while (c.Eat(','));
    if (!c.Eat('}')) return absl::InvalidArgumentError("object is not closed");
  }
  if (!c.AtEnd()) return absl::InvalidArgumentError("text after the object");
  if (!has_timestamp) return absl::InvalidArgumentError("no timestamp");
  if (!has_ids) return absl::InvalidArgumentError("no hash_ids");
  return r;
}

absl::StatusOr<std::vector<TraceRequest>> LoadTrace(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open trace ", path));
  std::vector<TraceRequest> trace;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    absl::StatusOr<TraceRequest> r = ParseTraceLine(line);
    if (!r.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", n, ": ", r.status().message()));
    }
    trace.push_back(std::move(*r));
  }
  return trace;
}

uint64_t DistinctBlocks(const std::vector<TraceRequest>& trace) {
  absl::flat_hash_set<uint64_t> ids;
  for (const TraceRequest& r : trace) ids.insert(r.hash_ids.begin(), r.hash_ids.end());
  return ids.size();
}

}  // namespace kvcache
