//===- Scheduler.cpp - which tokens run in the next step ------------------===//
#include "engine/Scheduler.h"

#include <algorithm>

using namespace dsrt::engine;

namespace {
int64_t pagesFor(int64_t tokens) {
  return (tokens + kPageTokens - 1) / kPageTokens;
}
} // namespace

bool Scheduler::fitPages(Request *r, int64_t numTokens) {
  int64_t need = pagesFor(numTokens) - int64_t(r->pages.size());
  return need <= 0 || pool.allocate(need, r->pages);
}

namespace {
/// Priority scheduling's order: lower priority values first, then arrival
/// (ids are handed out in arrival order).
bool before(const Request *a, const Request *b) {
  return a->params.priority != b->params.priority
             ? a->params.priority < b->params.priority
             : a->id < b->id;
}
} // namespace

void Scheduler::addWaiting(Request *r) {
  if (!config.priority) {
    waiting.push_back(r);
    return;
  }
  waiting.insert(std::upper_bound(waiting.begin(), waiting.end(), r, before),
                 r);
}

size_t Scheduler::victimIndex() const {
  if (!config.priority)
    return running.size() - 1;
  return size_t(std::max_element(running.begin(), running.end(), before) -
                running.begin());
}

void Scheduler::preempt(Request *r) {
  pool.release(r->pages);
  r->pages.clear();
  r->numComputed = 0;
  r->numPagesOffered = 0;
  r->state = RequestState::Waiting;
  if (config.priority) // back in its place in the order
    addWaiting(r);
  else
    waiting.push_front(r);
  ++preemptions;
}

void Scheduler::extendHashes(Request *r, int64_t numPages) {
  while (int64_t(r->pageHashes.size()) < numPages) {
    size_t i = r->pageHashes.size();
    uint64_t parent = i ? r->pageHashes.back() : 0;
    r->pageHashes.push_back(PrefixCache::pageHash(
        parent, r->tokens.data() + int64_t(i) * kPageTokens));
  }
}

std::vector<int32_t> Scheduler::prefixHits(Request *r) {
  // A return_logits or prompt_logits request must compute every row (as
  // vLLM skips the cache for prompt logprobs).
  if (!config.prefixCaching || r->params.returnLogits || r->params.promptLogits)
    return {};
  int64_t full = (r->numTokens() - 1) / kPageTokens;
  extendHashes(r, full);
  std::vector<uint64_t> hashes(r->pageHashes.begin(),
                               r->pageHashes.begin() + full);
  prefixQueryTokens += r->numTokens();
  return pool.cache().lookup(hashes, r->tokens);
}

std::vector<ScheduledRequest>
Scheduler::schedule(const std::function<void(Request *)> &onPreempt) {
  std::vector<ScheduledRequest> out;
  int64_t budget = config.maxNumBatchedTokens;
  bool preempted = false;
  for (size_t i = 0; i < running.size() && budget > 0;) {
    Request *r = running[i];
    int64_t numNew = std::min(r->numTokens() - r->numComputed, budget);
    bool selfPreempted = false;
    while (!fitPages(r, r->numComputed + numNew)) {
      size_t v = victimIndex();
      Request *victim = running[v];
      running.erase(running.begin() + long(v));
      if (v < i) {
        // Scheduled earlier in this step (priority scheduling only): out
        // of the step, its tokens back in the budget.
        auto it = std::find_if(
            out.begin(), out.end(),
            [&](const ScheduledRequest &s) { return s.request == victim; });
        budget += it->numNew;
        out.erase(it);
        --i;
      }
      preempt(victim);
      onPreempt(victim);
      preempted = true;
      if (victim == r) {
        selfPreempted = true;
        break;
      }
    }
    if (selfPreempted) // the ones after it (priority scheduling) go on
      continue;
    out.push_back({r, numNew});
    budget -= numNew;
    ++i;
  }
  if (preempted)
    return out;
  while (!waiting.empty() && budget > 0 &&
         int64_t(running.size()) < config.maxNumSeqs) {
    Request *r = waiting.front();
    std::vector<int32_t> hits = prefixHits(r);
    int64_t cachedTokens = int64_t(hits.size()) * kPageTokens;
    int64_t numNew = std::min(r->numTokens() - cachedTokens, budget);
    // Free pages the hits would take off the queue count against the rest.
    int64_t hitsFree = 0;
    for (int32_t p : hits)
      hitsFree += pool.refCount(p) == 0;
    int64_t need = pagesFor(cachedTokens + numNew) - int64_t(hits.size());
    if (need > pool.numFree() - hitsFree)
      break; // no room yet: it keeps its place in the queue
    for (int32_t p : hits)
      pool.touch(p);
    r->pages = hits;
    r->numPagesOffered = int64_t(hits.size());
    r->numComputed = cachedTokens;
    r->prefixHitTokens = std::max(r->prefixHitTokens, cachedTokens);
    prefixHitTokens += cachedTokens;
    bool ok = fitPages(r, cachedTokens + numNew);
    (void)ok; // counted above
    waiting.pop_front();
    r->state = RequestState::Running;
    running.push_back(r);
    out.push_back({r, numNew});
    budget -= numNew;
  }
  return out;
}

void Scheduler::computed(const ScheduledRequest &s) {
  Request *r = s.request;
  r->numComputed += s.numNew;
  if (!config.prefixCaching)
    return;
  int64_t full = r->numComputed / kPageTokens;
  extendHashes(r, full);
  for (int64_t i = r->numPagesOffered; i < full; ++i)
    pool.cache().insert(r->pages[size_t(i)], i ? r->pages[size_t(i - 1)] : -1,
                        r->pageHashes[size_t(i)],
                        r->tokens.data() + i * kPageTokens);
  r->numPagesOffered = std::max(r->numPagesOffered, full);
}

void Scheduler::trimPages(Request *r) {
  size_t keep = size_t(pagesFor(r->numComputed));
  if (r->pages.size() <= keep)
    return;
  pool.release(std::vector<int32_t>(r->pages.begin() + keep, r->pages.end()));
  r->pages.resize(keep);
}

void Scheduler::remove(Request *r) {
  if (r->state == RequestState::Running)
    running.erase(std::find(running.begin(), running.end(), r));
  else if (r->state == RequestState::Waiting) {
    auto it = std::find(waiting.begin(), waiting.end(), r);
    if (it != waiting.end())
      waiting.erase(it);
  }
  pool.release(r->pages);
  r->pages.clear();
  r->state = RequestState::Finished;
}
