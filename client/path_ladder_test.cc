#include "client/path_ladder.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace kvcache {
namespace {

// A path that answers every call with the outcome it was given, and lists
// the calls it got.
class ScriptedPath : public Transport {
 public:
  ScriptedPath(ClientPath path, Outcome answer, std::vector<std::string>* log)
      : path_(path), answer_(std::move(answer)), log_(log) {}
  ClientPath path() const override { return path_; }
  Outcome Fetch(const FetchCall&, absl::Span<const FetchTarget>, FetchProgress*) override {
    return Answer("fetch");
  }
  Outcome Put(const std::string&, const BlockKey&, absl::Span<const PutBlock>,
              std::vector<v1::PutOutcome>*) override {
    return Answer("put");
  }
  Outcome Lookup(const std::string&, absl::Span<const BlockKey>, LookupResult*) override {
    return Answer("lookup");
  }

 private:
  Outcome Answer(const char* op) {
    log_->push_back(std::string(ClientPathName(path_)) + " " + op);
    return answer_;
  }
  const ClientPath path_;
  const Outcome answer_;
  std::vector<std::string>* const log_;
};

const Transport::Outcome kBroken{absl::UnavailableError("cut"), true};
const Transport::Outcome kPartial{absl::OkStatus(), false, true};
const Transport::Outcome kAnswer{absl::OkStatus(), false};
const Transport::Outcome kDeadline{absl::DeadlineExceededError("no answer"), false};
const Transport::Outcome kDaemonError{absl::DataLossError("bad block"), false};

// Runs a lookup over paths answering `same_host`, `data_port`, `grpc`;
// returns the outcome, and in *calls and *broken what was asked and what
// was set aside.
Transport::Outcome RunLookup(const Transport::Outcome& same_host,
                             const Transport::Outcome& data_port, const Transport::Outcome& grpc,
                             std::vector<std::string>* calls, std::vector<std::string>* broken) {
  std::vector<std::unique_ptr<Transport>> ladder;
  ladder.push_back(std::make_unique<ScriptedPath>(ClientPath::kSameHost, same_host, calls));
  ladder.push_back(std::make_unique<ScriptedPath>(ClientPath::kDataPort, data_port, calls));
  ladder.push_back(std::make_unique<ScriptedPath>(ClientPath::kGrpc, grpc, calls));
  LookupResult result;
  return OverPaths(
      ladder, [&](const Transport& t) { broken->push_back(ClientPathName(t.path())); },
      [&](Transport& t) { return t.Lookup("ns", {}, &result); });
}

using Calls = std::vector<std::string>;

TEST(PathLadderTest, TheFastestPathThatAnswersIsTheOnlyOneAsked) {
  Calls calls, broken;
  EXPECT_TRUE(RunLookup(kAnswer, kAnswer, kAnswer, &calls, &broken).status.ok());
  EXPECT_EQ(calls, (Calls{"same_host lookup"}));
  EXPECT_TRUE(broken.empty());
}

TEST(PathLadderTest, ABrokenPathIsSetAsideAndTheNextAsked) {
  Calls calls, broken;
  EXPECT_TRUE(RunLookup(kBroken, kBroken, kAnswer, &calls, &broken).status.ok());
  EXPECT_EQ(calls, (Calls{"same_host lookup", "data_port lookup", "grpc lookup"}));
  EXPECT_EQ(broken, (Calls{"same_host", "data_port"}));
}

TEST(PathLadderTest, APartialAnswerGoesOnWithoutSettingThePathAside) {
  Calls calls, broken;
  EXPECT_TRUE(RunLookup(kPartial, kPartial, kAnswer, &calls, &broken).status.ok());
  EXPECT_EQ(calls, (Calls{"same_host lookup", "data_port lookup", "grpc lookup"}));
  EXPECT_TRUE(broken.empty());
}

TEST(PathLadderTest, TheDaemonsErrorAndADeadlineAreAnswersNotFallbacks) {
  for (const Transport::Outcome& answer : {kDaemonError, kDeadline}) {
    SCOPED_TRACE(answer.status.ToString());
    Calls calls, broken;
    const Transport::Outcome got = RunLookup(kPartial, answer, kAnswer, &calls, &broken);
    EXPECT_EQ(got.status, answer.status);
    EXPECT_EQ(calls, (Calls{"same_host lookup", "data_port lookup"}));
    EXPECT_TRUE(broken.empty());
  }
}

TEST(PathLadderTest, WhenEveryPathBreaksTheLastOutcomeIsReturned) {
  Calls calls, broken;
  const Transport::Outcome got = RunLookup(kBroken, kBroken, kBroken, &calls, &broken);
  EXPECT_TRUE(got.transport_failed);
  EXPECT_EQ(got.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(broken.size(), 3u);
  std::vector<std::unique_ptr<Transport>> none;
  EXPECT_TRUE(OverPaths(none, [](const Transport&) {}, [](Transport&) {
                return Transport::Outcome{absl::InternalError("never"), false};
              }).status.ok());
}

}  // namespace
}  // namespace kvcache
