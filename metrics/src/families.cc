#include <prometheus/text_serializer.h>

#include "weir/prometheus_families.h"

namespace weir {

void FamilyBuilder::Add(const std::string& name, const std::string& help, MetricKind kind,
                        const MetricLabels& labels, double value) {
  auto [it, added] = index_.try_emplace(name, families_.size());
  if (added) {
    prometheus::MetricFamily f;
    f.name = name;
    f.help = help;
    f.type = kind == MetricKind::kCounter ? prometheus::MetricType::Counter
                                          : prometheus::MetricType::Gauge;
    families_.push_back(std::move(f));
  }
  prometheus::MetricFamily& f = families_[it->second];
  prometheus::ClientMetric m;
  m.label.reserve(labels.size());
  for (const auto& [k, v] : labels) m.label.push_back({k, v});
  if (f.type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
}

void FamilyBuilder::AddPoint(const MetricPoint& p, const MetricLabels& base) {
  MetricLabels labels = base;
  for (const auto& l : p.labels) {
    // The point's vertex replaces the task's (a chain reports per vertex).
    bool replaced = false;
    for (auto& b : labels) {
      if (b.first == l.first) {
        b.second = l.second;
        replaced = true;
      }
    }
    if (!replaced) labels.push_back(l);
  }
  Add(p.name, p.help, p.kind, labels, p.value);
}

std::vector<prometheus::MetricFamily> FamilyBuilder::Take() {
  index_.clear();
  return std::move(families_);
}

std::string PrometheusText(const std::vector<prometheus::MetricFamily>& families) {
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace weir
