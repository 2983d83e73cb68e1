#include "apps/decoding/report.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "apps/decoding/evaluate.h"

namespace shallow::decoding {

namespace {

std::string fmt(const char* format, double a, double b = 0, double c = 0) {
  char buf[128];
  std::snprintf(buf, sizeof buf, format, a, b, c);
  return buf;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

}  // namespace

std::string sweep_csv(const SweepResult& r) {
  std::ostringstream os;
  os << "layer,depth,dim,top1_mean,top1_std,top5_mean,top5_std,seeds\n";
  for (const LayerResult& l : r.layers)
    os << l.name << "," << fmt("%.4f", l.depth) << "," << l.dim << "," << fmt("%.6f", l.top1_mean) << ","
       << fmt("%.6f", l.top1_std) << "," << fmt("%.6f", l.top5_mean) << "," << fmt("%.6f", l.top5_std) << ","
       << l.top1.size() << "\n";
  return os.str();
}

std::string sweep_summary(const SweepResult& r) {
  const LayerResult* best = r.best_numbered();
  const LayerResult* final = r.final_layer();
  std::ostringstream os;
  if (best) os << "best layer: " << best->name << fmt(" (depth %.2f), top-1 %.3f", best->depth, best->top1_mean);
  if (best && final) {
    os << fmt(" against the final embedding's %.3f", final->top1_mean);
    if (final->top1_mean > 0) os << fmt(" (%+.0f %%)", 100.0 * (best->top1_mean / final->top1_mean - 1.0));
  } else if (final) {
    os << fmt("final embedding: top-1 %.3f", final->top1_mean);
  }
  if (r.candidates > 0) os << fmt("; chance %.3f", 1.0 / double(r.candidates));
  os << "\n";
  if (r.simulated) os << "(simulated data: the EEG was made by the built-in simulator, not recorded)\n";
  return os.str();
}

std::string sweep_table(const SweepResult& r) {
  std::ostringstream os;
  os << (r.simulated ? "Layer sweep on SIMULATED data, " : "Layer sweep, ") << r.candidates
     << "-way zero-shot retrieval (mean +- std over seeds)\n";
  os << "layer   depth    dim   top-1            top-5\n";
  const LayerResult* best = r.best_numbered();
  for (const LayerResult& l : r.layers) {
    char line[160];
    std::snprintf(line, sizeof line, "%-6s  %5.2f  %5lld   %.3f +- %.3f    %.3f +- %.3f%s\n", l.name.c_str(), l.depth,
                  (long long)l.dim, l.top1_mean, l.top1_std, l.top5_mean, l.top5_std, &l == best ? "   <- best" : "");
    os << line;
  }
  os << sweep_summary(r);
  return os.str();
}

std::string sweep_svg(const SweepResult& r, const std::string& title) {
  const double W = 640, H = 420, left = 64, right = 24, top = 48, bottom = 56;
  const double pw = W - left - right, ph = H - top - bottom;
  const double chance = r.candidates > 0 ? 1.0 / double(r.candidates) : 0.0;
  double ymax = chance;
  for (const LayerResult& l : r.layers) ymax = std::max(ymax, l.top1_mean + l.top1_std);
  // A round upper limit: the next multiple of 0.05 (of 0.1 above 0.5).
  const double step = ymax > 0.5 ? 0.1 : 0.05;
  ymax = std::min(1.0, step * std::ceil(ymax * 1.1 / step + 1e-9));
  if (ymax <= 0) ymax = step;
  auto X = [&](double depth) { return left + depth * pw; };
  auto Y = [&](double v) { return top + (1.0 - v / ymax) * ph; };

  std::ostringstream os;
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W
     << " " << H << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  os << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  os << "<text x=\"" << W / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << xml_escape(title)
     << "</text>\n";
  if (r.simulated)
    os << "<text x=\"" << W / 2 << "\" y=\"38\" text-anchor=\"middle\" fill=\"#b00\">simulated data</text>\n";
  // Axes, grid and ticks.
  for (int i = 0; i <= 5; ++i) {
    const double v = ymax * i / 5.0, y = Y(v);
    os << "<line x1=\"" << left << "\" y1=\"" << y << "\" x2=\"" << left + pw << "\" y2=\"" << y
       << "\" stroke=\"#ddd\"/>\n";
    os << "<text x=\"" << left - 6 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\">" << fmt("%.2f", v) << "</text>\n";
  }
  for (int i = 0; i <= 4; ++i) {
    const double d = i / 4.0, x = X(d);
    os << "<line x1=\"" << x << "\" y1=\"" << top + ph << "\" x2=\"" << x << "\" y2=\"" << top + ph + 5
       << "\" stroke=\"black\"/>\n";
    os << "<text x=\"" << x << "\" y=\"" << top + ph + 18 << "\" text-anchor=\"middle\">" << fmt("%.2f", d)
       << "</text>\n";
  }
  os << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
     << "\" fill=\"none\" stroke=\"black\"/>\n";
  os << "<text x=\"" << left + pw / 2 << "\" y=\"" << H - 14 << "\" text-anchor=\"middle\">relative depth (layer / blocks)</text>\n";
  os << "<text transform=\"translate(18," << top + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\">top-1 ("
     << r.candidates << "-way)</text>\n";
  if (chance > 0) {
    os << "<line x1=\"" << left << "\" y1=\"" << Y(chance) << "\" x2=\"" << left + pw << "\" y2=\"" << Y(chance)
       << "\" stroke=\"#888\" stroke-dasharray=\"4 4\"/>\n";
    os << "<text x=\"" << left + pw - 4 << "\" y=\"" << Y(chance) - 4 << "\" text-anchor=\"end\" fill=\"#666\">chance</text>\n";
  }
  // The numbered layers: a line, error bars (one std) and points.
  std::string path;
  for (const LayerResult& l : r.layers) {
    if (l.layer < 0) continue;
    path += (path.empty() ? "M" : " L") + fmt("%.1f %.1f", X(l.depth), Y(l.top1_mean));
  }
  if (!path.empty()) os << "<path d=\"" << path << "\" fill=\"none\" stroke=\"#1f5fa8\" stroke-width=\"2\"/>\n";
  const LayerResult* best = r.best_numbered();
  for (const LayerResult& l : r.layers) {
    const double x = X(l.depth);
    const char* color = l.layer < 0 ? "#c0392b" : "#1f5fa8";
    if (l.top1_std > 0)
      os << "<line x1=\"" << x << "\" y1=\"" << Y(l.top1_mean - l.top1_std) << "\" x2=\"" << x << "\" y2=\""
         << Y(std::min(ymax, l.top1_mean + l.top1_std)) << "\" stroke=\"" << color << "\"/>\n";
    if (l.layer < 0) {  // the final embedding: a diamond, labeled
      const double y = Y(l.top1_mean);
      os << "<path d=\"M" << x << " " << y - 7 << " L" << x + 7 << " " << y << " L" << x << " " << y + 7 << " L"
         << x - 7 << " " << y << " Z\" fill=\"" << color << "\"><title>final: " << fmt("%.3f", l.top1_mean)
         << "</title></path>\n";
      os << "<text x=\"" << x - 10 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\" fill=\"" << color
         << "\">final</text>\n";
    } else {
      os << "<circle cx=\"" << x << "\" cy=\"" << Y(l.top1_mean) << "\" r=\"4\" fill=\"" << color << "\"><title>layer "
         << l.name << ": " << fmt("%.3f", l.top1_mean) << "</title></circle>\n";
      if (&l == best)
        os << "<text x=\"" << x << "\" y=\"" << Y(l.top1_mean) - 10 << "\" text-anchor=\"middle\">layer " << l.name
           << " (best)</text>\n";
    }
  }
  os << "</svg>\n";
  return os.str();
}

void write_sweep_report(const SweepResult& r, const std::string& dir, const std::string& title) {
  std::filesystem::create_directories(dir);
  write_text_file((std::filesystem::path(dir) / "sweep.csv").string(), sweep_csv(r));
  write_text_file((std::filesystem::path(dir) / "sweep.svg").string(), sweep_svg(r, title));
}

}  // namespace shallow::decoding
