#include "common/tls_files.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace kvcache {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

std::unique_ptr<BIO, BioFree> MemoryBio(const std::string& pem) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::unique_ptr<X509, X509Free> FirstCertificate(const std::string& pem) {
  auto bio = MemoryBio(pem);
  return std::unique_ptr<X509, X509Free>(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

}  // namespace

absl::StatusOr<std::string> ReadPemFile(const std::string& path, const std::string& flag) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  if (!in || !(bytes << in.rdbuf())) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  }
  return bytes.str();
}

absl::Status CheckTlsFiles(const std::string& cert, const std::string& key,
                           const std::string& flag_prefix) {
  absl::StatusOr<std::string> cert_pem = ReadPemFile(cert, flag_prefix + "cert");
  if (!cert_pem.ok()) return cert_pem.status();
  absl::StatusOr<std::string> key_pem = ReadPemFile(key, flag_prefix + "key");
  if (!key_pem.ok()) return key_pem.status();
  std::unique_ptr<X509, X509Free> certificate = FirstCertificate(*cert_pem);
  if (certificate == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag_prefix, "cert: no PEM certificate in ", cert));
  }
  auto key_bio = MemoryBio(*key_pem);
  std::unique_ptr<EVP_PKEY, KeyFree> private_key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (private_key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag_prefix, "key: no PEM private key in ", key, " (or it is encrypted)"));
  }
  if (X509_check_private_key(certificate.get(), private_key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(flag_prefix, "key: ", key,
                                                   " is not the key of the certificate in ", cert));
  }
  return absl::OkStatus();
}

absl::Status CheckCaFile(const std::string& ca, const std::string& flag) {
  absl::StatusOr<std::string> pem = ReadPemFile(ca, flag);
  if (!pem.ok()) return pem.status();
  if (FirstCertificate(*pem) == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(flag, ": no PEM certificate in ", ca));
  }
  return absl::OkStatus();
}

}  // namespace kvcache
