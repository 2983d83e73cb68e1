#pragma once
// What a sweep reports: sweep.csv, a table for the terminal, the best layer against the final
// embedding, and an SVG plot of top-1 against relative depth with the final layer marked.
// Results on the built-in simulated set say so in every one of them.
#include <string>

#include "apps/decoding/sweep.h"

namespace shallow::decoding {

// layer,depth,dim,top1_mean,top1_std,top5_mean,top5_std,seeds (fractions; one row per layer).
std::string sweep_csv(const SweepResult& r);
// An aligned table, then one line comparing the best numbered layer with the final one.
std::string sweep_table(const SweepResult& r);
std::string sweep_summary(const SweepResult& r);
// A self-contained SVG document.
std::string sweep_svg(const SweepResult& r, const std::string& title);

// Writes sweep.csv and sweep.svg into `dir` (each whole, renamed into place).
void write_sweep_report(const SweepResult& r, const std::string& dir, const std::string& title);

}  // namespace shallow::decoding
