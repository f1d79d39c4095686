// agent/terminal.h without a terminal: the SIGINT handler (a real signal, raised here),
// QuestionWatch turning Ctrl-C into a cancel (twice: a request to leave), and the width
// fallbacks. The libedit prompt itself runs under tmux in e2e_agent_tty.
#include "agent/terminal.h"
#include "support/wait.h"

#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

namespace larder::agent {
namespace {

TEST(Terminal, CtrlCCancelsTheQuestionAndASecondAsksToLeave) {
  InterruptHandler interrupts;
  ASSERT_TRUE(interrupts.ok());
  CancellationToken cancel;
  QuestionWatch watch(cancel, &interrupts, /*progress=*/false, 80);
  watch.set("waiting for the model (test-model)");
  ASSERT_EQ(::raise(SIGINT), 0);  // the program goes on: the handler only writes to a pipe
  EXPECT_TRUE(test::wait_until([&] { return cancel.cancelled(); }, std::chrono::seconds(2)));
  EXPECT_TRUE(watch.interrupted());
  EXPECT_FALSE(watch.exit_requested());
  ASSERT_EQ(::raise(SIGINT), 0);
  EXPECT_TRUE(test::wait_until([&] { return watch.exit_requested(); }, std::chrono::seconds(2)));
  watch.stop();  // within the grace period: no forced exit
}

TEST(Terminal, AnInterruptBeforeTheQuestionIsNotForIt) {
  InterruptHandler interrupts;
  ASSERT_TRUE(interrupts.ok());
  ASSERT_EQ(::raise(SIGINT), 0);
  CancellationToken cancel;
  QuestionWatch watch(cancel, &interrupts, false, 80);
  // A sleep on purpose: what is shown is that nothing happens, and no event says "the watch
  // has looked at its interrupts and ignored the old one".
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(cancel.cancelled());
  watch.stop();
}

TEST(Terminal, HandlerIsRestoredAndOneAtATime) {
  struct sigaction before {};
  ::sigaction(SIGINT, nullptr, &before);
  {
    InterruptHandler first;
    EXPECT_TRUE(first.ok());
    InterruptHandler second;
    EXPECT_FALSE(second.ok());  // the first one keeps SIGINT
    EXPECT_EQ(second.take(), 0);
    struct sigaction now {};
    first.suspend();  // a prompt read without the line editor: Ctrl-C as before
    ::sigaction(SIGINT, nullptr, &now);
    EXPECT_EQ(now.sa_handler, before.sa_handler);
    first.resume();
    ::sigaction(SIGINT, nullptr, &now);
    EXPECT_NE(now.sa_handler, before.sa_handler);
  }
  struct sigaction after {};
  ::sigaction(SIGINT, nullptr, &after);
  EXPECT_EQ(after.sa_handler, before.sa_handler);
}

TEST(Terminal, WidthFallsBackToColumnsThenEighty) {
  const int not_a_terminal = -1;
  ::setenv("COLUMNS", "123", 1);
  EXPECT_EQ(terminal_columns(not_a_terminal), 123u);
  ::setenv("COLUMNS", "wide", 1);
  EXPECT_EQ(terminal_columns(not_a_terminal), 80u);
  ::unsetenv("COLUMNS");
  EXPECT_EQ(terminal_columns(not_a_terminal), 80u);
}

TEST(Terminal, NoLineEditorWithoutATerminal) {
  // ctest runs without a terminal on stdin/stdout: -i falls back to reading the stream.
  if (::isatty(0) && ::isatty(1)) GTEST_SKIP() << "run from a terminal";
  EXPECT_EQ(LineEditor::open("larder", nullptr), nullptr);
}

}  // namespace
}  // namespace larder::agent
