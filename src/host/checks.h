// Argument checks: everything the host can verify before a launch. Each
// error names the offending argument first.
#ifndef OPENMLA_HOST_CHECKS_H_
#define OPENMLA_HOST_CHECKS_H_

#include <cstddef>

#include "openmla/openmla.h"

namespace openmla {

openmla_status ok_status();
openmla_status make_error(openmla_status_code code, const char* fmt, ...)
    __attribute__((format(printf, 2, 3)));

// Shape fields of a plan; num_sms must already be resolved (> 0).
openmla_status check_decode_shape(const openmla_decode_shape* shape);

// Every check of openmla_dense_decode that needs no GPU: tensors, dtypes,
// shapes, strides, alignment, and the workspace size. args->num_sms must be
// > 0 here (0 means "query the device", which the API resolves first).
openmla_status check_dense_decode_args(const openmla_dense_decode_args* args,
                                       size_t workspace_bytes);

}  // namespace openmla

#endif  // OPENMLA_HOST_CHECKS_H_
