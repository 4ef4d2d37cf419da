#pragma once

#include <string>
#include <string_view>

#include "store/result.h"
#include "store/types.h"

// Kubernetes' syntax rules for names, labels and ports. Each check returns an empty string when
// the value is fine, or a sentence that says what is wrong.
namespace svcbox::store {

std::string checkDns1035Label(std::string_view value);      // Service names
std::string checkDns1123Label(std::string_view value);      // namespaces, service port names
std::string checkDns1123Subdomain(std::string_view value);  // pod names, externalName
std::string checkPortName(std::string_view value);          // IANA_SVC_NAME: container ports
std::string checkLabelKey(std::string_view value);
std::string checkLabelValue(std::string_view value);

// Whole-object rules that need no registry state. The error's field is a dotted path.
Status validateService(const Service& service);
Status validatePod(const Pod& pod);
Status validateEndpointSet(const EndpointSet& set);

}  // namespace svcbox::store
