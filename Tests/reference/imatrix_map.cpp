// The importance matrix llama_model_quantize takes (`llama_model_quantize_params.imatrix`): a
// std::unordered_map<std::string, std::vector<float>> from tensor name to per-column weights, what
// llama-quantize builds from an imatrix file. Built by Tests/reference/check_kquants.py.
#include <string>
#include <unordered_map>
#include <vector>

using ImatrixMap = std::unordered_map<std::string, std::vector<float>>;

extern "C" void *imatrix_map_new() { return new ImatrixMap(); }

extern "C" void imatrix_map_put(void *m, const char *name, const float *values, long n) {
    (*static_cast<ImatrixMap *>(m))[name] = std::vector<float>(values, values + n);
}

extern "C" void imatrix_map_free(void *m) { delete static_cast<ImatrixMap *>(m); }
