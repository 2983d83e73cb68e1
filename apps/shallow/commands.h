#pragma once
// The `shallow` command line: each subcommand lives in its own apps/shallow/cmd_<name>.cpp and
// registers itself here. A subcommand reads its options, does its work, writes its report to
// `out` (and progress or notes to `err`) and returns an exit code; every shallow::Error it
// throws becomes "error: ..." and exit code 2 (see cli.cpp).
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace shallow::cli {

struct Streams {
  std::ostream& out;
  std::ostream& err;
};

// The function a subcommand runs once the command line is parsed.
using Action = std::function<int(Streams&)>;

// Adds a subcommand to `app`; sets *action to the function to run when it is chosen.
void add_inspect(CLI::App& app, Action* action);
void add_convert(CLI::App& app, Action* action);
void add_extract(CLI::App& app, Action* action);
void add_train(CLI::App& app, Action* action);
void add_eval(CLI::App& app, Action* action);
void add_sweep(CLI::App& app, Action* action);
void add_demo(CLI::App& app, Action* action);

// Parses the arguments, runs the chosen subcommand, and turns errors into messages and codes:
// 0 success (or --help), 2 bad input (shallow::Error or a command-line mistake), 1 anything
// unexpected.
int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace shallow::cli
