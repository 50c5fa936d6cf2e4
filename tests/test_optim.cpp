// SGD, Adam and AdamW against torch.optim: the same gradients fed for six steps, the parameters
// compared after every step.
#include "testing.h"

namespace cnn::testing {
namespace {

std::unique_ptr<Optimizer> make(const nlohmann::json& c, std::vector<Parameter*> params) {
  const std::string kind = c["kind"];
  if (kind == "sgd") {
    SGDOptions o(c["lr"].get<double>());
    o.momentum(c.value("momentum", 0.0))
        .dampening(c.value("dampening", 0.0))
        .weight_decay(c.value("weight_decay", 0.0))
        .nesterov(c.value("nesterov", false));
    return std::make_unique<SGD>(std::move(params), o);
  }
  AdamOptions o(c["lr"].get<double>());
  if (c.contains("betas")) o.beta1(c["betas"][0].get<double>()).beta2(c["betas"][1].get<double>());
  if (c.contains("eps")) o.eps(c["eps"].get<double>());
  if (kind == "adam") {
    o.weight_decay(c.value("weight_decay", 0.0));
    return std::make_unique<Adam>(std::move(params), o);
  }
  o.weight_decay(c.value("weight_decay", 1e-2));
  return std::make_unique<AdamW>(std::move(params), o);
}

TEST(Optim, MatchesTorchOptim) {
  const Archive a = read_archive(fixture("optim"));
  const auto& cases = a.meta.at("cases");
  ASSERT_GE(cases.size(), 8u);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    SCOPED_TRACE("optimizer case " + std::to_string(i) + ": " + c.dump());
    const std::string k = case_name(static_cast<int>(i));
    std::vector<Parameter> params(2);
    std::vector<Parameter*> ptrs;
    for (int j = 0; j < 2; ++j) {
      params[j].value = a.get(k + "p" + std::to_string(j) + "/init").clone();
      params[j].grad = Tensor(params[j].value.shape());
      ptrs.push_back(&params[j]);
    }
    auto opt = make(c, ptrs);
    for (int t = 0; t < c["steps"].get<int>(); ++t) {
      for (int j = 0; j < 2; ++j) {
        const std::string pj = k + "p" + std::to_string(j) + "/";
        const Tensor& g = a.get(pj + "grad" + std::to_string(t));
        std::copy(g.begin(), g.end(), params[j].grad.data());
      }
      opt->step();
      for (int j = 0; j < 2; ++j) {
        const std::string pj = k + "p" + std::to_string(j) + "/";
        EXPECT_TRUE(all_close(params[j].value, a.get(pj + "after" + std::to_string(t)), kGolden))
            << "param " << j << " after step " << t;
      }
    }
  }
}

TEST(Optim, RejectsInvalidOptions) {
  Parameter p{Tensor({2}), Tensor({2})};
  EXPECT_THROW(SGD({&p}, SGDOptions(-0.1)), Error);
  EXPECT_THROW(SGD({&p}, SGDOptions(0.1).nesterov(true)), Error);
  EXPECT_THROW(Adam({&p}, AdamOptions(1e-3).beta1(1.0)), Error);
  EXPECT_THROW(Adam({&p}, AdamOptions(1e-3).eps(-1)), Error);
  EXPECT_THROW(Adam({}, AdamOptions()), Error);
}

}  // namespace
}  // namespace cnn::testing
