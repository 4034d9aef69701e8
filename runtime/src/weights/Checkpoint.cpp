//===- Checkpoint.cpp - safetensors files and checkpoints -----------------===//
#include "weights/Checkpoint.h"
#include "support/HugePages.h"
#include "support/JsonParser.h"
#include "support/OneLine.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <set>
#include <string_view>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace dsrt;

static constexpr const char *kIndexName = "model.safetensors.index.json";

int64_t TensorView::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

std::string dsrt::shapeToString(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::vector<int64_t> dsrt::fp8ScaleShape(const std::vector<int64_t> &shape) {
  return {(shape[0] + kFP8BlockSize - 1) / kFP8BlockSize,
          (shape[1] + kFP8BlockSize - 1) / kFP8BlockSize};
}

static std::string baseName(const std::string &path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

//===----------------------------------------------------------------------===//
// SafetensorsFile
//===----------------------------------------------------------------------===//

SafetensorsFile::~SafetensorsFile() {
  if (mapping)
    munmap(mapping, mappedSize);
}

namespace {

/// `size` bytes of `fd` read-only at a 2 MiB aligned address where they
/// span a huge page, advised MADV_HUGEPAGE unless DSRT_HUGE_PAGES=0. A
/// 2 MiB page-cache folio is then mapped by one page-table entry, and a
/// read fault reads ahead in 2 MiB folios where the kernel caches the
/// file system's files in large folios: decode at DeepSeek-V3's widths
/// ran 1.01-1.26x faster from them than from 4 KiB pages, with the VM's
/// minute (bench/RESULTS.md). Sets `advised`; MAP_FAILED on failure (errno
/// set).
void *mapFile(int fd, size_t size, bool &advised) {
  advised = false;
  if (size < kHugePageBytes || size > SIZE_MAX - 2 * kHugePageBytes)
    return mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  // Reserve an aligned span, then map the file over it: the kernel
  // aligns large file mappings itself only since Linux 6.x.
  size_t slack = kHugePageBytes;
  void *reserve = mmap(nullptr, size + slack, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserve == MAP_FAILED)
    return MAP_FAILED;
  uintptr_t lo = reinterpret_cast<uintptr_t>(reserve);
  uintptr_t at = (lo + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  void *map = mmap(reinterpret_cast<void *>(at), size, PROT_READ,
                   MAP_PRIVATE | MAP_FIXED, fd, 0);
  if (map == MAP_FAILED) {
    int saved = errno;
    munmap(reserve, size + slack);
    errno = saved;
    return MAP_FAILED;
  }
  // Give back the reservation around the file (page-rounded ends).
  size_t page = size_t(sysconf(_SC_PAGESIZE));
  uintptr_t fileEnd = (at + size + page - 1) / page * page;
  if (at > lo)
    munmap(reserve, at - lo);
  if (lo + size + slack > fileEnd)
    munmap(reinterpret_cast<void *>(fileEnd), lo + size + slack - fileEnd);
#ifdef MADV_HUGEPAGE
  advised = hugePagesAllowed() && madvise(map, size, MADV_HUGEPAGE) == 0;
#endif
  return map;
}

/// Checks one header entry into `v` (`begin` is its offset in the data
/// section); on failure returns false with `why`, without file or tensor.
bool parseEntry(const json::Value &entry, uint64_t dataSize, TensorView &v,
                uint64_t &begin, std::string &why) {
  auto fail = [&](const std::string &msg) {
    why = msg;
    return false;
  };
  if (entry.kind != json::Value::Object)
    return fail("header entry is not an object (got " + json::describe(entry) +
                ")");
  const json::Value *dt = entry.get("dtype");
  const json::Value *shape = entry.get("shape");
  const json::Value *offs = entry.get("data_offsets");
  if (!dt || dt->kind != json::Value::String)
    return fail("missing or non-string dtype");
  if (!parseDType(dt->string, v.dtype))
    return fail("unknown dtype '" + dt->string + "'");
  if (!shape || shape->kind != json::Value::Array)
    return fail("missing or non-array shape");
  for (const json::Value &d : shape->items) {
    if (d.kind != json::Value::Number || !d.isInteger || d.integer < 0)
      return fail("shape entry " + json::describe(d) +
                  " is not a non-negative integer");
    v.shape.push_back(d.integer);
  }
  // Bounded well below 2^64 so that element and byte counts never wrap.
  const uint64_t limit = uint64_t(1) << 62;
  uint64_t numel = 1;
  for (int64_t d : v.shape) {
    if (d > 0 && numel > limit / uint64_t(d))
      return fail("shape " + shapeToString(v.shape) + " is too large");
    numel *= uint64_t(d);
  }
  uint64_t elemSize = dtypeSize(v.dtype);
  if (numel > limit / elemSize)
    return fail("shape " + shapeToString(v.shape) + " is too large");
  if (!offs || offs->kind != json::Value::Array || offs->items.size() != 2)
    return fail("data_offsets must be [begin, end]");
  for (const json::Value &o : offs->items)
    if (o.kind != json::Value::Number || !o.isInteger || o.integer < 0)
      return fail("data_offsets entry " + json::describe(o) +
                  " is not a non-negative integer");
  begin = uint64_t(offs->items[0].integer);
  uint64_t end = uint64_t(offs->items[1].integer);
  if (begin > end)
    return fail("data_offsets out of order (begin " + std::to_string(begin) +
                " > end " + std::to_string(end) + ")");
  if (end > dataSize)
    return fail("data_offsets end " + std::to_string(end) +
                " is past the data section (" + std::to_string(dataSize) +
                " bytes)");
  uint64_t expected = numel * elemSize;
  if (end - begin != expected)
    return fail("holds " + std::to_string(end - begin) + " bytes but shape " +
                shapeToString(v.shape) + " x " + dtypeName(v.dtype) +
                " needs " + std::to_string(expected));
  v.nbytes = size_t(expected);
  return true;
}

bool isStringMap(const json::Value &v) {
  if (v.kind != json::Value::Object)
    return false;
  for (const auto &m : v.members)
    if (m.second.kind != json::Value::String)
      return false;
  return true;
}

} // namespace

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string &path,
                                                       std::string &error) {
  // Checkpoint::open, its only caller, keeps the message on one line.
  auto fail = [&](const std::string &msg) {
    error = path + ": " + msg;
    return nullptr;
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail("not a regular file");
  }
  size_t size = size_t(st.st_size);
  if (size < 8) {
    ::close(fd);
    return fail("file of " + std::to_string(size) +
                " bytes is too short for a safetensors header (8 bytes)");
  }
  bool advised = false;
  void *map = mapFile(fd, size, advised);
  int mapErrno = errno;
  ::close(fd); // the mapping keeps the file alive
  if (map == MAP_FAILED)
    return fail(std::string("cannot mmap: ") + std::strerror(mapErrno));
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->filePath = path;
  f->mapping = map;
  f->mappedSize = size;
  f->hugeAdvised = advised;
  const uint8_t *bytes = static_cast<const uint8_t *>(map);

  uint64_t headerLen = 0;
  for (int i = 7; i >= 0; --i)
    headerLen = (headerLen << 8) | bytes[i];
  if (headerLen > size - 8)
    return fail("header length " + std::to_string(headerLen) +
                " runs past the end of the file (" + std::to_string(size) +
                " bytes)");
  if (headerLen > kMaxHeaderBytes)
    return fail("header length " + std::to_string(headerLen) +
                " exceeds the limit of " + std::to_string(kMaxHeaderBytes) +
                " bytes");
  std::string_view header(reinterpret_cast<const char *>(bytes + 8),
                          size_t(headerLen));
  json::Value root;
  std::string jerr;
  if (!json::parse(header, root, jerr))
    return fail("header is not valid JSON: " + jerr);
  if (root.kind != json::Value::Object)
    return fail("header is not a JSON object (got " + json::describe(root) +
                ")");
  if (const std::string *dup = json::findDuplicateKey(root))
    return fail(*dup == "__metadata__"
                    ? "__metadata__ appears twice in the header"
                    : "tensor '" + *dup + "': appears twice in the header");
  const uint8_t *data = bytes + 8 + headerLen;
  uint64_t dataSize = size - 8 - headerLen;

  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto &[name, entry] : root.members) {
    if (name == "__metadata__") {
      if (!isStringMap(entry))
        return fail("__metadata__ is not an object of strings");
      continue;
    }
    TensorView v;
    v.name = name;
    v.file = path;
    uint64_t begin = 0;
    std::string why;
    if (!parseEntry(entry, dataSize, v, begin, why))
      return fail("tensor '" + name + "': " + why);
    v.data = data + begin;
    ranges.push_back({begin, begin + v.nbytes});
    f->views.push_back(std::move(v));
  }

  // Overlapping byte ranges would alias two tensors. Sorted by begin, a
  // range overlaps an earlier one iff it starts before the furthest end
  // seen so far (empty tensors occupy no bytes).
  std::vector<size_t> order(ranges.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return ranges[a] < ranges[b]; });
  uint64_t furthest = 0;
  size_t owner = 0;
  bool any = false;
  for (size_t i : order) {
    auto [begin, end] = ranges[i];
    if (begin == end)
      continue;
    if (any && begin < furthest)
      return fail("tensor '" + f->views[i].name + "': bytes overlap tensor '" +
                  f->views[owner].name + "'");
    if (!any || end > furthest) {
      furthest = end;
      owner = i;
    }
    any = true;
  }
  return f;
}

//===----------------------------------------------------------------------===//
// Checkpoint
//===----------------------------------------------------------------------===//

static bool readFile(const std::string &path, std::string &out) {
  FILE *f = std::fopen(path.c_str(), "rb");
  if (!f)
    return false;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0)
    out.append(buf, n);
  bool ok = !std::ferror(f);
  std::fclose(f);
  return ok;
}

/// weight_map of the index at `path`: tensor name -> shard file name, and
/// the shards in order of first mention.
static bool readIndex(const std::string &path,
                      std::map<std::string, std::string> &weightMap,
                      std::vector<std::string> &shards, std::string &error) {
  std::string text, jerr;
  if (!readFile(path, text)) {
    error = path + ": cannot read: " + std::strerror(errno);
    return false;
  }
  json::Value root;
  if (!json::parse(text, root, jerr)) {
    error = path + ":" + jerr + " (invalid JSON)";
    return false;
  }
  const json::Value *wm = root.get("weight_map");
  if (!wm || wm->kind != json::Value::Object) {
    error = path + ": missing object 'weight_map'";
    return false;
  }
  if (const std::string *dup = json::findDuplicateKey(*wm)) {
    error = path + ": tensor '" + *dup + "' is listed twice in weight_map";
    return false;
  }
  std::set<std::string> seen;
  for (const auto &[name, file] : wm->members) {
    // Shards live beside the index: a path could reach any file.
    if (file.kind != json::Value::String || file.string.empty() ||
        file.string.find('/') != std::string::npos || file.string == "." ||
        file.string == "..") {
      error = path + ": tensor '" + name + "': shard " + json::describe(file) +
              " is not a file name";
      return false;
    }
    weightMap[name] = file.string;
    if (seen.insert(file.string).second)
      shards.push_back(file.string);
  }
  return true;
}

static bool listSafetensors(const std::string &dir,
                            std::vector<std::string> &files,
                            std::string &error) {
  DIR *d = opendir(dir.c_str());
  if (!d) {
    error = dir + ": cannot open directory: " + std::strerror(errno);
    return false;
  }
  static const std::string ext = ".safetensors";
  while (dirent *e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > ext.size() &&
        n.compare(n.size() - ext.size(), ext.size(), ext) == 0)
      files.push_back(n);
  }
  closedir(d);
  // Sorted so that which of two duplicates is reported is reproducible.
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    error = dir + ": no *.safetensors files and no " + kIndexName;
    return false;
  }
  return true;
}

std::unique_ptr<Checkpoint> Checkpoint::open(const std::string &dir,
                                             std::string &error) {
  // Names come from the index and the headers: the message stays one line.
  std::unique_ptr<Checkpoint> opened = [&]() -> std::unique_ptr<Checkpoint> {
    std::unique_ptr<Checkpoint> c(new Checkpoint());
    c->dir = dir;
    while (c->dir.size() > 1 && c->dir.back() == '/')
      c->dir.pop_back();
    std::string index = c->dir + "/" + kIndexName;
    std::vector<std::string> shardFiles;
    std::map<std::string, std::string> weightMap;
    struct stat st;
    bool sharded = stat(index.c_str(), &st) == 0;
    if (sharded ? !readIndex(index, weightMap, shardFiles, error)
                : !listSafetensors(c->dir, shardFiles, error))
      return nullptr;

    for (const std::string &name : shardFiles) {
      std::string path = c->dir + "/" + name;
      if (sharded && stat(path.c_str(), &st) != 0) {
        error = path + ": cannot open shard listed in " + kIndexName + ": " +
                std::strerror(errno);
        return nullptr;
      }
      auto f = SafetensorsFile::open(path, error);
      if (!f)
        return nullptr;
      for (const TensorView &v : f->tensors()) {
        auto [it, inserted] = c->byName.emplace(v.name, &v);
        if (!inserted) {
          error = v.file + ": tensor '" + v.name + "' also appears in " +
                  baseName(it->second->file);
          return nullptr;
        }
      }
      c->files.push_back(std::move(f));
    }
    for (const auto &[name, file] : weightMap) {
      const TensorView *v = c->find(name);
      if (!v) {
        error = c->dir + "/" + file + ": tensor '" + name + "' is listed in " +
                kIndexName + " but missing";
        return nullptr;
      }
      if (baseName(v->file) != file) {
        error = v->file + ": tensor '" + name + "' is listed under " + file +
                " in " + kIndexName;
        return nullptr;
      }
    }
    return c;
  }();
  if (!opened)
    error = oneLine(error);
  return opened;
}

const TensorView *Checkpoint::find(const std::string &name) const {
  auto it = byName.find(name);
  return it == byName.end() ? nullptr : it->second;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(byName.size());
  for (const auto &kv : byName)
    out.push_back(kv.first);
  return out;
}

//===----------------------------------------------------------------------===//
// Conversion to f32
//===----------------------------------------------------------------------===//

namespace {

/// A tensor ready to be converted: its FP8 scale found and checked.
struct Source {
  const TensorView *v = nullptr;
  const TensorView *scale = nullptr; // F8_E4M3 only
};

bool prepareUnescaped(const Checkpoint &ckpt, const std::string &name,
                      Source &src, std::string &error) {
  const TensorView *v = ckpt.find(name);
  if (!v) {
    error =
        ckpt.directory() + ": tensor '" + name + "' is not in the checkpoint";
    return false;
  }
  src.v = v;
  switch (v->dtype) {
  case DType::F32:
  case DType::F16:
  case DType::BF16:
    return true;
  case DType::F8_E4M3:
    break;
  default:
    error = v->file + ": tensor '" + name + "': dtype " + dtypeName(v->dtype) +
            " is not a supported weight dtype";
    return false;
  }
  const TensorView *s = ckpt.find(name + "_scale_inv");
  if (v->shape.size() != 2 || !s || s->dtype != DType::F32) {
    error = v->file + ": tensor '" + name +
            "': FP8 weight needs a 2-D shape and an F32 '" + name +
            "_scale_inv'";
    return false;
  }
  std::vector<int64_t> want = fp8ScaleShape(v->shape);
  if (s->shape != want) {
    error = s->file + ": tensor '" + s->name + "': shape " +
            shapeToString(s->shape) + ", expected " + shapeToString(want) +
            " for 128x128 blocks of " + shapeToString(v->shape);
    return false;
  }
  src.scale = s;
  return true;
}

template <typename T> T load(const uint8_t *p, int64_t i) {
  T x;
  std::memcpy(&x, p + i * int64_t(sizeof(T)), sizeof(T));
  return x;
}

/// Elements [begin, begin + count) of `src`, row-major, into `out`.
void convert(const Source &src, int64_t begin, int64_t count, float *out) {
  const uint8_t *p = src.v->data;
  switch (src.v->dtype) {
  case DType::F32:
    std::memcpy(out, p + begin * 4, size_t(count) * 4);
    return;
  case DType::BF16:
    for (int64_t i = 0; i < count; ++i)
      out[i] = bf16ToF32(load<uint16_t>(p, begin + i));
    return;
  case DType::F16:
    for (int64_t i = 0; i < count; ++i)
      out[i] = f16ToF32(load<uint16_t>(p, begin + i));
    return;
  case DType::F8_E4M3: {
    int64_t cols = src.v->shape[1];
    int64_t blockCols = (cols + kFP8BlockSize - 1) / kFP8BlockSize;
    const uint8_t *scale = src.scale->data;
    int64_t r = cols ? begin / cols : 0, c = cols ? begin % cols : 0;
    for (int64_t i = 0; i < count;) {
      // One run of a row within one block shares its scale.
      int64_t run =
          std::min({count - i, cols - c, kFP8BlockSize - c % kFP8BlockSize});
      float sc = load<float>(scale, (r / kFP8BlockSize) * blockCols +
                                        c / kFP8BlockSize);
      for (int64_t k = 0; k < run; ++k)
        out[i + k] = e4m3ToF32(p[begin + i + k]) * sc;
      i += run;
      c += run;
      if (c == cols) {
        c = 0;
        ++r;
      }
    }
    return;
  }
  default:
    return; // refused by prepare()
  }
}

std::string indexToString(int64_t flat, const std::vector<int64_t> &shape) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] ? flat % shape[d] : 0;
    flat = shape[d] ? flat / shape[d] : 0;
  }
  return shapeToString(idx);
}

/// `name`'s tensor and scale into src, or a one-line error.
bool prepare(const Checkpoint &ckpt, const std::string &name, Source &src,
             std::string &error) {
  if (prepareUnescaped(ckpt, name, src, error))
    return true;
  error = oneLine(error);
  return false;
}

/// Each problem on its own line, whatever names it quotes.
std::vector<std::string> oneLineEach(std::vector<std::string> problems) {
  for (std::string &p : problems)
    p = oneLine(p);
  return problems;
}

} // namespace

bool Checkpoint::readF32(const std::string &name, float *out,
                         std::string &error) const {
  Source src;
  if (!prepare(*this, name, src, error))
    return false;
  convert(src, 0, src.v->numElements(), out);
  return true;
}

bool Checkpoint::readF32Slice(const std::string &name, int64_t dim,
                              int64_t piece, int64_t parts, float *out,
                              std::string &error) const {
  Source src;
  if (!prepare(*this, name, src, error))
    return false;
  const std::vector<int64_t> &shape = src.v->shape;
  if (dim < 0 || dim >= int64_t(shape.size()) || parts < 1 ||
      shape[size_t(dim)] % parts != 0 || piece < 0 || piece >= parts) {
    error = oneLine(src.v->file + ": tensor '" + name + "' of shape " +
                    shapeToString(shape) + " cannot be cut into " +
                    std::to_string(parts) + " pieces along dim " +
                    std::to_string(dim));
    return false;
  }
  // Contiguous runs: for every index of the dims before `dim`, the piece's
  // rows of `dim` times everything after it.
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d)
    outer *= shape[size_t(d)];
  for (size_t d = size_t(dim) + 1; d < shape.size(); ++d)
    inner *= shape[d];
  int64_t size = shape[size_t(dim)] / parts;
  int64_t run = size * inner;
  for (int64_t o = 0; o < outer; ++o)
    convert(src, (o * shape[size_t(dim)] + piece * size) * inner, run,
            out + o * run);
  return true;
}

//===----------------------------------------------------------------------===//
// Validation
//===----------------------------------------------------------------------===//

/// Problems of the weight_scale_inv of an FP8 weight `v` of the right
/// shape. A scale that is itself required is checked as a requirement, so
/// only what that check misses is reported here (no problem twice).
static void checkFP8Scale(const Checkpoint &ckpt, const TensorView &v,
                          const std::set<std::string> &requiredNames,
                          std::vector<std::string> &problems) {
  std::string scaleName = v.name + "_scale_inv";
  bool required = requiredNames.count(scaleName) != 0;
  if (v.shape.size() != 2) {
    problems.push_back(v.file + ": tensor '" + v.name +
                       "': F8_E4M3 weight of shape " + shapeToString(v.shape) +
                       " is not 2-D, as its 128x128 scale blocks need");
    return;
  }
  const TensorView *s = ckpt.find(scaleName);
  if (!s) {
    if (!required)
      problems.push_back(v.file + ": tensor '" + v.name +
                         "': F8_E4M3 weight without '" + scaleName + "'");
    return;
  }
  if (s->dtype != DType::F32 &&
      !(required && !isSupportedWeightDType(s->dtype)))
    problems.push_back(s->file + ": tensor '" + scaleName + "': dtype " +
                       dtypeName(s->dtype) + ", expected F32 (the scale of '" +
                       v.name + "')");
  std::vector<int64_t> want = fp8ScaleShape(v.shape);
  if (s->shape != want && !required)
    problems.push_back(s->file + ": tensor '" + scaleName + "': shape " +
                       shapeToString(s->shape) + ", expected " +
                       shapeToString(want) + " for 128x128 blocks of '" +
                       v.name + "' " + shapeToString(v.shape));
}

std::vector<std::string>
dsrt::validateCheckpoint(const Checkpoint &ckpt,
                         const std::vector<WeightRequirement> &required) {
  std::vector<std::string> problems;
  std::set<std::string> requiredNames;
  for (const WeightRequirement &r : required)
    requiredNames.insert(r.name);
  for (const WeightRequirement &r : required) {
    const TensorView *v = ckpt.find(r.name);
    if (!v) {
      problems.push_back("tensor '" + r.name + "' " + shapeToString(r.shape) +
                         " is missing from the checkpoint in " +
                         ckpt.directory());
      continue;
    }
    if (v->shape != r.shape)
      problems.push_back(v->file + ": tensor '" + r.name + "': shape " +
                         shapeToString(v->shape) + ", expected " +
                         shapeToString(r.shape));
    if (!isSupportedWeightDType(v->dtype))
      problems.push_back(v->file + ": tensor '" + r.name + "': dtype " +
                         dtypeName(v->dtype) +
                         " is not supported (F32, F16, BF16, F8_E4M3)");
    else if (v->dtype == DType::F8_E4M3 && v->shape == r.shape)
      checkFP8Scale(ckpt, *v, requiredNames, problems);
  }
  return oneLineEach(std::move(problems));
}

std::vector<std::string>
dsrt::scanNonFinite(const Checkpoint &ckpt,
                    const std::vector<std::string> &names) {
  // In chunks: an embedding table converted whole would take gigabytes.
  constexpr int64_t kChunk = int64_t(1) << 20;
  std::vector<std::string> problems;
  std::vector<float> buf;
  for (const std::string &name : names) {
    const TensorView *v = ckpt.find(name);
    if (!v || !isSupportedWeightDType(v->dtype))
      continue;
    Source src;
    std::string err;
    if (!prepare(ckpt, name, src, err)) {
      problems.push_back(err);
      continue;
    }
    int64_t n = v->numElements();
    for (int64_t begin = 0; begin < n; begin += kChunk) {
      int64_t count = std::min(kChunk, n - begin);
      buf.resize(size_t(count));
      convert(src, begin, count, buf.data());
      auto bad = std::find_if(buf.begin(), buf.end(),
                              [](float x) { return !std::isfinite(x); });
      if (bad == buf.end())
        continue;
      int64_t at = begin + (bad - buf.begin());
      problems.push_back(v->file + ": tensor '" + name +
                         "': " + (std::isnan(*bad) ? "NaN" : "Inf") +
                         " at element " + std::to_string(at) + " (index " +
                         indexToString(at, v->shape) + ")");
      break;
    }
  }
  return oneLineEach(std::move(problems));
}
