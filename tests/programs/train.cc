// A small C++ training program that `cautograd record -- train_cpp` records in
// the end-to-end tests. It links Debian's libtorch and nothing of cautograd.
#include <cstdlib>
#include <iostream>

#include <torch/torch.h>

int main(int argc, char** argv) {
  int steps = argc > 1 ? std::atoi(argv[1]) : 2;
  torch::manual_seed(0);
  torch::nn::Sequential model(torch::nn::Linear(6, 12), torch::nn::Tanh(), torch::nn::Linear(12, 3));
  torch::optim::SGD optimizer(model->parameters(), 0.05);
  double loss_value = 0;
  for (int i = 0; i < steps; ++i) {
    torch::Tensor x = torch::randn({5, 6});
    torch::Tensor target = torch::randint(0, 3, {5}, torch::kLong);
    optimizer.zero_grad();
    torch::Tensor loss = torch::nn::functional::cross_entropy(model->forward(x), target);
    loss.backward();
    optimizer.step();
    loss_value = loss.item<double>();
  }
  std::cout << "loss " << loss_value << "\n";
  return 0;
}
