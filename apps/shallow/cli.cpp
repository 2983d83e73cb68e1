#include <exception>
#include <new>
#include <ostream>

#include "apps/shallow/commands.h"
#include "engine/error.h"

namespace shallow::cli {

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app{"shallow: shallow-alignment neural decoding, from weights files to EEG retrieval", "shallow"};
  app.require_subcommand(1);
  Action action;
  add_inspect(app, &action);
  add_convert(app, &action);
  add_extract(app, &action);
  add_train(app, &action);
  add_eval(app, &action);
  add_sweep(app, &action);
  add_demo(app, &action);

  // CLI11 takes the arguments in reverse order, without the program name.
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::Success&) {
    out << app.help();
    return 0;
  } catch (const CLI::CallForHelp&) {
    CLI::App* sub = app.get_subcommands().empty() ? &app : app.get_subcommands().front();
    out << sub->help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    out << app.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::ParseError& e) {
    err << "error: " << e.what() << "\n(run 'shallow --help' for the commands and their options)\n";
    return 2;
  }

  Streams streams{out, err};
  try {
    return action(streams);
  } catch (const Error& e) {
    out.flush();
    err << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::bad_alloc&) {
    err << "error: out of memory\n";
    return 2;
  } catch (const std::exception& e) {
    err << "internal error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace shallow::cli
