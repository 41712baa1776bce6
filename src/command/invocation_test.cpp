#include "netpoll/command/invocation.h"

#include <gtest/gtest.h>

#include "netpoll/base/bytes.h"

namespace np::command {
namespace {

TEST(Invocation, SplitsTheWordFromItsArguments) {
  auto i = parse_invocation(as_bytes("  level   4  "));
  ASSERT_TRUE(i);
  EXPECT_EQ(i->word, "level");
  EXPECT_EQ(i->args, "4");
  auto t = parse_invocation(as_bytes("t"));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->word, "t");
  EXPECT_EQ(t->args, "");
  auto many = parse_invocation(as_bytes("greet a b  c"));
  ASSERT_TRUE(many);
  EXPECT_EQ(many->args, "a b  c");
}

TEST(Invocation, RefusesEmptyBodiesAndBytesOutsidePrintableAscii) {
  EXPECT_FALSE(parse_invocation(as_bytes("")));
  EXPECT_FALSE(parse_invocation(as_bytes("   ")));
  EXPECT_FALSE(parse_invocation(as_bytes("t\n")));
  EXPECT_FALSE(parse_invocation(as_bytes(std::string_view("t\0", 2))));
  EXPECT_FALSE(parse_invocation(as_bytes("l\xc3\xa9")));
}

TEST(Invocation, FindsEveryBuiltinByLetterAndByName) {
  for (const auto& b : kBuiltins) {
    EXPECT_EQ(find_builtin(std::string_view(&b.letter, 1)), b.id) << b.name;
    EXPECT_EQ(find_builtin(b.name), b.id) << b.name;
    EXPECT_EQ(builtin_info(b.id).name, b.name);
  }
  EXPECT_EQ(find_builtin("stack"), std::nullopt);
  EXPECT_EQ(find_builtin("x"), std::nullopt);
  EXPECT_EQ(find_builtin("T"), std::nullopt);
}

TEST(Invocation, TakesLevelsZeroToEightOnly) {
  EXPECT_EQ(parse_level_arg("0"), 0);
  EXPECT_EQ(parse_level_arg("8"), 8);
  EXPECT_EQ(parse_level_arg("9"), std::nullopt);
  EXPECT_EQ(parse_level_arg("10"), std::nullopt);
  EXPECT_EQ(parse_level_arg(""), std::nullopt);
  EXPECT_EQ(parse_level_arg("x"), std::nullopt);
}

}  // namespace
}  // namespace np::command
