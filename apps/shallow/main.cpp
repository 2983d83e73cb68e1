// The `shallow` command: see apps/shallow/commands.h and DESIGN.md.
#include <iostream>
#include <string>
#include <vector>

#include "apps/shallow/commands.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return shallow::cli::run(args, std::cout, std::cerr);
}
