//===- Checkpoint.cpp - safetensors files and checkpoints -----------------===//
#include "weights/Checkpoint.h"
#include "support/JsonParser.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace dsrt;

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

std::unique_ptr<SafetensorsFile>
SafetensorsFile::open(const std::string &path, std::string &error) {
  auto fail = [&](const std::string &msg) {
    error = path + ": " + msg;
    return nullptr;
  };
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0)
    return fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail("not a regular file");
  }
  size_t size = size_t(st.st_size);
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->filePath = path;
  if (size < 8) {
    ::close(fd);
    return fail("file of " + std::to_string(size) +
                " bytes is too short for a safetensors header");
  }
  void *map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED)
    return fail(std::string("cannot mmap: ") + std::strerror(errno));
  f->mapping = map;
  f->mappedSize = size;
  const uint8_t *bytes = static_cast<const uint8_t *>(map);

  uint64_t headerLen = 0;
  for (int i = 7; i >= 0; --i)
    headerLen = (headerLen << 8) | bytes[i];
  if (headerLen > size - 8)
    return fail("header length " + std::to_string(headerLen) +
                " runs past the end of the file (" + std::to_string(size) +
                " bytes)");
  std::string header(reinterpret_cast<const char *>(bytes + 8), headerLen);
  json::Value root;
  std::string jerr;
  if (!json::parse(header, root, jerr))
    return fail("header is not valid JSON: " + jerr);
  if (root.kind != json::Value::Object)
    return fail("header is not a JSON object");
  const uint8_t *data = bytes + 8 + headerLen;
  uint64_t dataSize = size - 8 - headerLen;

  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  std::vector<std::string> seen;
  for (const auto &[name, entry] : root.members) {
    if (name == "__metadata__")
      continue;
    auto tfail = [&](const std::string &msg) {
      return fail("tensor '" + name + "': " + msg);
    };
    if (std::find(seen.begin(), seen.end(), name) != seen.end())
      return tfail("appears twice in the header");
    seen.push_back(name);
    if (entry.kind != json::Value::Object)
      return tfail("header entry is not an object");
    const json::Value *dt = entry.get("dtype");
    const json::Value *shape = entry.get("shape");
    const json::Value *offs = entry.get("data_offsets");
    if (!dt || dt->kind != json::Value::String)
      return tfail("missing or non-string dtype");
    TensorView v;
    v.name = name;
    v.file = path;
    if (!parseDType(dt->string, v.dtype))
      return tfail("unknown dtype '" + dt->string + "'");
    if (!shape || shape->kind != json::Value::Array)
      return tfail("missing or non-array shape");
    uint64_t numel = 1;
    for (const json::Value &d : shape->items) {
      if (d.kind != json::Value::Number || !d.isInteger || d.integer < 0)
        return tfail("shape entry " + json::describe(d) +
                     " is not a non-negative integer");
      if (d.integer > 0 && numel > (uint64_t(1) << 62) / uint64_t(d.integer))
        return tfail("shape " + json::describe(*shape) + " is too large");
      numel *= uint64_t(d.integer);
      v.shape.push_back(d.integer);
    }
    if (!offs || offs->kind != json::Value::Array || offs->items.size() != 2)
      return tfail("data_offsets must be [begin, end]");
    for (const json::Value &o : offs->items)
      if (o.kind != json::Value::Number || !o.isInteger || o.integer < 0)
        return tfail("data_offsets entry " + json::describe(o) +
                     " is not a non-negative integer");
    uint64_t begin = uint64_t(offs->items[0].integer);
    uint64_t end = uint64_t(offs->items[1].integer);
    if (begin > end)
      return tfail("data_offsets out of order (begin " +
                   std::to_string(begin) + " > end " + std::to_string(end) +
                   ")");
    if (end > dataSize)
      return tfail("data_offsets end " + std::to_string(end) +
                   " is past the data section (" + std::to_string(dataSize) +
                   " bytes)");
    uint64_t expected = numel * dtypeSize(v.dtype);
    if (end - begin != expected)
      return tfail("holds " + std::to_string(end - begin) +
                   " bytes but shape " + shapeToString(v.shape) + " x " +
                   dtypeName(v.dtype) + " needs " + std::to_string(expected));
    v.data = data + begin;
    v.nbytes = end - begin;
    ranges.push_back({begin, end});
    f->views.push_back(std::move(v));
  }
  // Overlapping byte ranges would alias two tensors.
  std::vector<size_t> order(ranges.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return ranges[a] < ranges[b]; });
  for (size_t i = 1; i < order.size(); ++i) {
    auto &prev = ranges[order[i - 1]], &cur = ranges[order[i]];
    if (cur.first < prev.second && cur.first != cur.second &&
        prev.first != prev.second)
      return fail("tensor '" + f->views[order[i]].name +
                  "': bytes overlap tensor '" + f->views[order[i - 1]].name +
                  "'");
  }
  return f;
}

//===----------------------------------------------------------------------===//
// Checkpoint
//===----------------------------------------------------------------------===//

static bool readFile(const std::string &path, std::string &out) {
  FILE *f = fopen(path.c_str(), "rb");
  if (!f)
    return false;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
    out.append(buf, n);
  fclose(f);
  return true;
}

std::unique_ptr<Checkpoint> Checkpoint::open(const std::string &dir,
                                             std::string &error) {
  std::unique_ptr<Checkpoint> c(new Checkpoint());
  std::string index = dir + "/model.safetensors.index.json";
  std::vector<std::string> shardFiles;
  std::map<std::string, std::string> weightMap;
  struct stat st;
  bool sharded = stat(index.c_str(), &st) == 0;
  if (sharded) {
    std::string text, jerr;
    json::Value root;
    if (!readFile(index, text)) {
      error = index + ": cannot read";
      return nullptr;
    }
    if (!json::parse(text, root, jerr)) {
      error = index + ":" + jerr + " (invalid JSON)";
      return nullptr;
    }
    const json::Value *wm = root.get("weight_map");
    if (!wm || wm->kind != json::Value::Object) {
      error = index + ": missing object 'weight_map'";
      return nullptr;
    }
    for (const auto &[name, file] : wm->members) {
      if (file.kind != json::Value::String || file.string.empty() ||
          file.string.find('/') != std::string::npos) {
        error = index + ": tensor '" + name + "': shard " +
                json::describe(file) + " is not a file name";
        return nullptr;
      }
      weightMap[name] = file.string;
      if (std::find(shardFiles.begin(), shardFiles.end(), file.string) ==
          shardFiles.end())
        shardFiles.push_back(file.string);
    }
  } else {
    DIR *d = opendir(dir.c_str());
    if (!d) {
      error = dir + ": cannot open directory: " + std::strerror(errno);
      return nullptr;
    }
    while (dirent *e = readdir(d)) {
      std::string n = e->d_name;
      if (n.size() > 12 && n.compare(n.size() - 12, 12, ".safetensors") == 0)
        shardFiles.push_back(n);
    }
    closedir(d);
    std::sort(shardFiles.begin(), shardFiles.end());
    if (shardFiles.empty()) {
      error = dir + ": no *.safetensors files and no "
                    "model.safetensors.index.json";
      return nullptr;
    }
  }
  for (const std::string &name : shardFiles) {
    auto f = SafetensorsFile::open(dir + "/" + name, error);
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
      error = dir + "/" + file + ": tensor '" + name +
              "' is listed in model.safetensors.index.json but missing";
      return nullptr;
    }
    if (baseName(v->file) != file) {
      error = v->file + ": tensor '" + name + "' is listed under " + file +
              " in model.safetensors.index.json";
      return nullptr;
    }
  }
  return c;
}

const TensorView *Checkpoint::find(const std::string &name) const {
  auto it = byName.find(name);
  return it == byName.end() ? nullptr : it->second;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto &kv : byName)
    out.push_back(kv.first);
  return out;
}

bool Checkpoint::readF32(const std::string &name, float *out,
                         std::string &error) const {
  const TensorView *v = find(name);
  if (!v) {
    error = "tensor '" + name + "' is not in the checkpoint";
    return false;
  }
  int64_t n = v->numElements();
  const uint8_t *p = v->data;
  switch (v->dtype) {
  case DType::F32:
    std::memcpy(out, p, n * 4);
    return true;
  case DType::BF16:
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out[i] = bf16ToF32(h);
    }
    return true;
  case DType::F16:
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out[i] = f16ToF32(h);
    }
    return true;
  case DType::F8_E4M3: {
    const TensorView *s = find(name + "_scale_inv");
    if (v->shape.size() != 2 || !s || s->dtype != DType::F32) {
      error = v->file + ": tensor '" + name +
              "': FP8 weight needs a 2-D shape and an F32 '" + name +
              "_scale_inv'";
      return false;
    }
    int64_t rows = v->shape[0], cols = v->shape[1];
    int64_t br = (rows + 127) / 128, bc = (cols + 127) / 128;
    if (s->shape != std::vector<int64_t>{br, bc}) {
      error = s->file + ": tensor '" + s->name + "': shape " +
              shapeToString(s->shape) + ", expected " +
              shapeToString({br, bc}) + " for 128x128 blocks of " +
              shapeToString(v->shape);
      return false;
    }
    const float *scale = reinterpret_cast<const float *>(s->data);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t col = 0; col < cols; ++col) {
        float sc;
        std::memcpy(&sc, scale + (r / 128) * bc + col / 128, 4);
        out[r * cols + col] = e4m3ToF32(p[r * cols + col]) * sc;
      }
    return true;
  }
  default:
    error = v->file + ": tensor '" + name + "': dtype " +
            dtypeName(v->dtype) + " is not a supported weight dtype";
    return false;
  }
}

std::vector<std::string>
dsrt::validateCheckpoint(const Checkpoint &ckpt,
                         const std::vector<WeightRequirement> &required) {
  std::vector<std::string> problems;
  for (const WeightRequirement &r : required) {
    const TensorView *v = ckpt.find(r.name);
    if (!v) {
      problems.push_back("tensor '" + r.name + "' " + shapeToString(r.shape) +
                         " is missing from the checkpoint");
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
  }
  return problems;
}

std::vector<std::string>
dsrt::scanNonFinite(const Checkpoint &ckpt,
                    const std::vector<std::string> &names) {
  std::vector<std::string> problems;
  std::vector<float> buf;
  for (const std::string &name : names) {
    const TensorView *v = ckpt.find(name);
    if (!v || !isSupportedWeightDType(v->dtype))
      continue;
    buf.resize(size_t(v->numElements()));
    std::string err;
    if (!ckpt.readF32(name, buf.data(), err)) {
      problems.push_back(err);
      continue;
    }
    for (size_t i = 0; i < buf.size(); ++i)
      if (!std::isfinite(buf[i])) {
        problems.push_back(v->file + ": tensor '" + name + "': " +
                           (std::isnan(buf[i]) ? "NaN" : "Inf") +
                           " at element " + std::to_string(i));
        break;
      }
  }
  return problems;
}
