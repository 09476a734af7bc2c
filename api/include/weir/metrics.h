// Metrics an operator reports about itself (Kafka lag, files, RocksDB), beside the figures the
// runtime measures for every subtask (records, bytes, busy and back-pressured time).
//
// The task thread calls Operator::ReportMetrics (and SourceOperator::ReportMetrics) about once a
// second and publishes the points it got; other threads (the task manager's /metrics) read the
// published copy, never the operator. So an operator keeps plain counters, touched by its own
// thread only: no atomic and no allocation per record. The runtime adds the labels job, vertex,
// subtask and tm; an operator adds only its own (topic, partition). Names start with "weir_" and
// are listed in docs/metrics.md.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace weir {

enum class MetricKind { kCounter, kGauge };

struct MetricPoint {
  std::string name;
  const char* help = "";
  MetricKind kind = MetricKind::kGauge;
  std::vector<std::pair<std::string, std::string>> labels;  // the operator's own labels
  double value = 0;
};

class MetricWriter {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;
  void Counter(std::string name, const char* help, double value, Labels labels = {}) {
    points_.push_back({std::move(name), help, MetricKind::kCounter, std::move(labels), value});
  }
  void Gauge(std::string name, const char* help, double value, Labels labels = {}) {
    points_.push_back({std::move(name), help, MetricKind::kGauge, std::move(labels), value});
  }
  std::vector<MetricPoint>& points() { return points_; }

 private:
  std::vector<MetricPoint> points_;
};

}  // namespace weir
