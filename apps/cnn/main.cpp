// cnn: define, train, evaluate and look inside the tutorial's CNN from the command line.
#include <cstdio>

#include "common.h"

int main(int argc, char** argv) {
  CLI::App app{
      "cnn: train, evaluate, predict with and visualise the CNN of the MNIST tutorial.\n"
      "Run 'cnn <command> --help' for a command's options."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "cnn 0.1.0");
  int exit_code = 0;
  cnn::cli::add_summary_command(app, exit_code);
  cnn::cli::add_train_command(app, exit_code);
  cnn::cli::add_eval_command(app, exit_code);
  cnn::cli::add_predict_command(app, exit_code);
  cnn::cli::add_visualize_command(app, exit_code);
  cnn::cli::add_bench_command(app, exit_code);
  cnn::cli::add_serve_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const cnn::Error& e) {
    std::fprintf(stderr, "cnn: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cnn: error: %s\n", e.what());
    return 1;
  }
  return exit_code;
}
