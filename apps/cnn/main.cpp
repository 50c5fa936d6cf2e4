// cnn: define, train, evaluate and look inside the tutorial's CNN from the command line.
#include <cstdio>

#include "common.h"

// Exit codes: 0 success, 2 a command line that does not parse (an unknown command or option, an
// impossible value), 1 anything else (a missing file, an output that cannot be written, ...).
int main(int argc, char** argv) {
  CLI::App app{
      "cnn: train, evaluate, predict with and visualise the CNN of the MNIST tutorial.\n"
      "Run 'cnn <command> --help' for a command's options."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "cnn " CNN_VERSION);
  int exit_code = 0;
  cnn::cli::add_summary_command(app, exit_code);
  cnn::cli::add_train_command(app, exit_code);
  cnn::cli::add_eval_command(app, exit_code);
  cnn::cli::add_predict_command(app, exit_code);
  cnn::cli::add_visualize_command(app, exit_code);
  cnn::cli::add_bench_command(app, exit_code);
  cnn::cli::add_serve_command(app, exit_code);
  cnn::cli::add_export_command(app, exit_code);
  cnn::cli::add_import_command(app, exit_code);
  if (const std::string error = cnn::cli::unknown_command(app, argc, argv); !error.empty()) {
    std::fprintf(stderr, "cnn: error: %s\n", error.c_str());
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::fprintf(stderr, "cnn: error: %s\n",
                 cnn::cli::describe_parse_error(app, e, argc, argv).c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cnn: error: %s\n", e.what());
    return 1;
  }
  return exit_code;
}
