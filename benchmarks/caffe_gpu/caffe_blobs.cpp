// caffe_blobs: run real Caffe nets on the CPU or a GPU and save every blob, parameter and gradient as .npy,
// or time forward passes. The C++ side of benchmarks/caffe_gpu.py: it needs only libcaffe (no Python,
// numpy or Boost.Python), so that a self-contained pack of it (scripts/pack_caffe_gpu.sh) runs on a GPU
// machine whatever its Python.
//
// Usage: caffe_blobs JOBS      JOBS holds one command per line (fields separated by spaces):
//   mode cpu | mode gpu DEVICE          Caffe::set_mode (and SetDevice) for the nets that follow
//   net PROTOTXT CAFFEMODEL TEST|TRAIN  the net the following lines run (weights copied from CAFFEMODEL)
//   run INPUTS OUTPUTS 0|1              inputs INPUTS/<blob>.npy (float32, C order) for each net input;
//                                       forward (1: then backward), and into the folder OUTPUTS:
//                                       data__<blob>.npy, param__<layer>__<i>.npy (and diff__<blob>.npy,
//                                       pdiff__<layer>__<i>.npy after backward), names.txt (blobs, inputs,
//                                       outputs: one line each, space separated)
//   time INPUTS REPEATS SECONDS_FILE    one warm-up forward, then REPEATS timed forwards (each ends with
//                                       the device synchronised); their seconds, one a line
#include <caffe/caffe.hpp>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

using caffe::Blob;
using caffe::Caffe;
using caffe::Net;
using std::string;
using std::vector;

namespace {

// A float32 C-order .npy file (format 1.0 or 2.0): its shape and values.
vector<float> ReadNpy(const string& path, vector<int>* shape) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  char magic[8];
  in.read(magic, 8);
  if (!in || string(magic + 1, 5) != "NUMPY") throw std::runtime_error(path + ": not an .npy file");
  uint32_t header_len = 0;
  if (magic[6] == 1) {
    unsigned char b[2];
    in.read(reinterpret_cast<char*>(b), 2);
    header_len = b[0] | (b[1] << 8);
  } else {
    unsigned char b[4];
    in.read(reinterpret_cast<char*>(b), 4);
    header_len = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
  }
  string header(header_len, ' ');
  in.read(&header[0], header_len);
  if (header.find("'descr': '<f4'") == string::npos || header.find("'fortran_order': False") == string::npos) {
    throw std::runtime_error(path + ": needs float32 ('<f4') in C order");
  }
  size_t open = header.find('(', header.find("'shape'")), close = header.find(')', open);
  std::stringstream dims(header.substr(open + 1, close - open - 1));
  shape->clear();
  size_t count = 1;
  for (string dim; std::getline(dims, dim, ',');) {
    if (dim.find_first_not_of(' ') == string::npos) continue;
    shape->push_back(std::stoi(dim));
    count *= shape->back();
  }
  vector<float> values(count);
  in.read(reinterpret_cast<char*>(values.data()), count * sizeof(float));
  if (!in) throw std::runtime_error(path + ": shorter than its shape says");
  return values;
}

void WriteNpy(const string& path, const vector<int>& shape, const float* values) {
  string dims;
  size_t count = 1;
  for (int d : shape) {
    dims += std::to_string(d) + ",";
    count *= d;
  }
  if (shape.size() > 1) dims.pop_back();  // (3,) for one axis, (2, 3) for more
  string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  header.append(64 - (10 + header.size() + 1) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  const uint16_t len = static_cast<uint16_t>(header.size());
  out.write("\x93NUMPY\x01\x00", 8);
  out.put(static_cast<char>(len & 0xff)).put(static_cast<char>(len >> 8));
  out << header;
  out.write(reinterpret_cast<const char*>(values), count * sizeof(float));
  if (!out) throw std::runtime_error(path + ": write failed");
}

void SetInputs(Net<float>* net, const string& folder) {
  for (int index : net->input_blob_indices()) {
    const string& name = net->blob_names()[index];
    vector<int> shape;
    vector<float> values = ReadNpy(folder + "/" + name + ".npy", &shape);
    Blob<float>* blob = net->blobs()[index].get();
    blob->Reshape(shape);
    std::copy(values.begin(), values.end(), blob->mutable_cpu_data());
  }
  net->Reshape();
}

void Synchronize() {
  if (Caffe::mode() == Caffe::GPU) CUDA_CHECK(cudaDeviceSynchronize());
}

string Join(const vector<string>& names) {
  string line;
  for (const string& name : names) line += (line.empty() ? "" : " ") + name;
  return line;
}

void Run(Net<float>* net, const string& inputs, const string& outputs, bool backward) {
  SetInputs(net, inputs);
  net->Forward();
  if (backward) {
    net->ClearParamDiffs();
    net->Backward();
  }
  const vector<string>& names = net->blob_names();
  vector<string> ins, outs;
  for (int i : net->input_blob_indices()) ins.push_back(names[i]);
  for (int i : net->output_blob_indices()) outs.push_back(names[i]);
  for (size_t i = 0; i < names.size(); ++i) {
    const Blob<float>& blob = *net->blobs()[i];
    WriteNpy(outputs + "/data__" + names[i] + ".npy", blob.shape(), blob.cpu_data());
    if (backward) WriteNpy(outputs + "/diff__" + names[i] + ".npy", blob.shape(), blob.cpu_diff());
  }
  for (size_t l = 0; l < net->layers().size(); ++l) {
    const vector<boost::shared_ptr<Blob<float> > >& params = net->layers()[l]->blobs();
    for (size_t j = 0; j < params.size(); ++j) {
      const string stem = net->layer_names()[l] + "__" + std::to_string(j) + ".npy";
      WriteNpy(outputs + "/param__" + stem, params[j]->shape(), params[j]->cpu_data());
      if (backward) WriteNpy(outputs + "/pdiff__" + stem, params[j]->shape(), params[j]->cpu_diff());
    }
  }
  std::ofstream(outputs + "/names.txt") << Join(names) << "\n" << Join(ins) << "\n" << Join(outs) << "\n";
}

void Time(Net<float>* net, const string& inputs, int repeats, const string& seconds_file) {
  SetInputs(net, inputs);
  net->Forward();  // warm-up: cuDNN algorithm choice, workspace allocation
  Synchronize();
  std::ofstream out(seconds_file);
  for (int r = 0; r < repeats; ++r) {
    auto start = std::chrono::steady_clock::now();
    net->Forward();
    Synchronize();
    out << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: caffe_blobs JOBS (see the top of caffe_blobs.cpp)\n";
    return 2;
  }
  FLAGS_minloglevel = 1;  // glog warnings and errors only (the nets' set-up logs at INFO)
  google::InitGoogleLogging(argv[0]);
  std::ifstream jobs(argv[1]);
  boost::shared_ptr<Net<float> > net;
  int line_number = 0;
  try {
    for (string line; std::getline(jobs, line);) {
      ++line_number;
      std::istringstream fields(line);
      string command, a, b, c;
      fields >> command >> a >> b >> c;
      if (command.empty()) {
        continue;
      } else if (command == "mode") {
        if (a == "gpu") {
          Caffe::SetDevice(std::stoi(b));
          Caffe::set_mode(Caffe::GPU);
        } else {
          Caffe::set_mode(Caffe::CPU);
        }
      } else if (command == "net") {
        net.reset(new Net<float>(a, c == "TRAIN" ? caffe::TRAIN : caffe::TEST));
        net->CopyTrainedLayersFrom(b);
      } else if (command == "run" && net) {
        Run(net.get(), a, b, c == "1");
      } else if (command == "time" && net) {
        Time(net.get(), a, std::stoi(b), c);
      } else {
        throw std::runtime_error("unknown command, or no net before it: " + line);
      }
    }
  } catch (const std::exception& error) {
    std::cerr << argv[1] << ":" << line_number << ": " << error.what() << "\n";
    return 1;
  }
  return 0;
}
