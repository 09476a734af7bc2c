// Building Prometheus metric families at scrape time.
//
// Weir keeps its figures where they are measured (relaxed per-batch counters in the task,
// checkpoint statistics in the job manager) and turns them into metric families only when
// /metrics is scraped, so a scrape costs the scraper's thread and never the task thread. A
// FamilyBuilder is used by one thread at a time; ScrapeCollectable::Collect may be called from
// the exposer's threads concurrently, so its function must be thread-safe.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "weir/metrics.h"

namespace weir {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class FamilyBuilder {
 public:
  void Add(const std::string& name, const std::string& help, MetricKind kind,
           const MetricLabels& labels, double value);
  void Counter(const std::string& name, const std::string& help, const MetricLabels& labels,
               double value) {
    Add(name, help, MetricKind::kCounter, labels, value);
  }
  void Gauge(const std::string& name, const std::string& help, const MetricLabels& labels,
             double value) {
    Add(name, help, MetricKind::kGauge, labels, value);
  }
  // An operator's point (weir/metrics.h) under the given base labels.
  void AddPoint(const MetricPoint& p, const MetricLabels& base);
  std::vector<prometheus::MetricFamily> Take();

 private:
  std::map<std::string, size_t> index_;
  std::vector<prometheus::MetricFamily> families_;
};

// weir_process_*: resident memory, CPU seconds, threads and open fds of this process, read
// from /proc/self. `labels` names the process (e.g. {"tm", id} or {"component", "jobmanager"}).
void AddProcessMetrics(FamilyBuilder& b, const MetricLabels& labels);

// A collectable whose families are made by a function at every scrape.
class ScrapeCollectable : public prometheus::Collectable {
 public:
  explicit ScrapeCollectable(std::function<std::vector<prometheus::MetricFamily>()> fn)
      : fn_(std::move(fn)) {}
  std::vector<prometheus::MetricFamily> Collect() const override { return fn_(); }

 private:
  std::function<std::vector<prometheus::MetricFamily>()> fn_;
};

// The Prometheus text exposition format of `families`.
std::string PrometheusText(const std::vector<prometheus::MetricFamily>& families);

}  // namespace weir
