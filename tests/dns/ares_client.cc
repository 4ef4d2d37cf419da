// A real c-ares client for the e2e tests: asks one question of one server and prints what the
// c-ares parsers make of the answer, one record per line, or "status NAME" when it failed.
#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <sys/select.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

struct Request {
  int type;
  bool done = false;
};

void printAnswer(int type, unsigned char* answer, int length) {
  char text[INET6_ADDRSTRLEN];
  if (type == ns_t_a) {
    ares_addrttl records[64];
    int count = 64;
    if (ares_parse_a_reply(answer, length, nullptr, records, &count) != ARES_SUCCESS) return;
    for (int i = 0; i < count; ++i) {
      std::printf("A %s\n", inet_ntop(AF_INET, &records[i].ipaddr, text, sizeof text));
    }
  } else if (type == ns_t_aaaa) {
    ares_addr6ttl records[64];
    int count = 64;
    if (ares_parse_aaaa_reply(answer, length, nullptr, records, &count) != ARES_SUCCESS) return;
    for (int i = 0; i < count; ++i) {
      std::printf("AAAA %s\n", inet_ntop(AF_INET6, &records[i].ip6addr, text, sizeof text));
    }
  } else if (type == ns_t_srv) {
    ares_srv_reply* records = nullptr;
    if (ares_parse_srv_reply(answer, length, &records) != ARES_SUCCESS) return;
    for (auto* record = records; record; record = record->next) {
      std::printf("SRV %u %u %u %s\n", record->priority, record->weight, record->port,
                  record->host);
    }
    ares_free_data(records);
  } else if (type == ns_t_ptr) {
    hostent* host = nullptr;
    if (ares_parse_ptr_reply(answer, length, "", 0, AF_INET, &host) != ARES_SUCCESS) return;
    // c-ares lists every PTR target among the aliases, the first also as h_name.
    bool any = false;
    for (char** alias = host->h_aliases; alias && *alias; ++alias, any = true) {
      std::printf("PTR %s\n", *alias);
    }
    if (!any) std::printf("PTR %s\n", host->h_name);
    ares_free_hostent(host);
  } else if (type == ns_t_txt) {
    ares_txt_reply* records = nullptr;
    if (ares_parse_txt_reply(answer, length, &records) != ARES_SUCCESS) return;
    for (auto* record = records; record; record = record->next) {
      std::printf("TXT %.*s\n", static_cast<int>(record->length), record->txt);
    }
    ares_free_data(records);
  }
}

void onAnswer(void* arg, int status, int, unsigned char* answer, int length) {
  auto* request = static_cast<Request*>(arg);
  request->done = true;
  if (status != ARES_SUCCESS) {
    std::printf("status %s\n", ares_strerror(status));
    return;
  }
  printAnswer(request->type, answer, length);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: ares_client SERVER PORT NAME A|AAAA|SRV|PTR|TXT [tcp]\n");
    return 2;
  }
  std::string type_name = argv[4];
  int type = type_name == "A"      ? ns_t_a
             : type_name == "AAAA" ? ns_t_aaaa
             : type_name == "SRV"  ? ns_t_srv
             : type_name == "PTR"  ? ns_t_ptr
                                   : ns_t_txt;
  ares_library_init(ARES_LIB_INIT_ALL);
  ares_options options{};
  options.timeout = 2000;
  options.tries = 1;
  options.flags =
      ARES_FLAG_NOSEARCH | (argc > 5 && std::string(argv[5]) == "tcp" ? ARES_FLAG_USEVC : 0);
  ares_channel channel;
  if (ares_init_options(&channel, &options, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS) !=
      ARES_SUCCESS) {
    return 2;
  }
  std::string servers = std::string(argv[1]) + ":" + argv[2];
  if (ares_set_servers_ports_csv(channel, servers.c_str()) != ARES_SUCCESS) return 2;
  Request request{type};
  ares_query(channel, argv[3], ns_c_in, type, onAnswer, &request);
  for (int round = 0; round < 100 && !request.done; ++round) {  // bounded: about 5 s at most
    fd_set read_fds;
    fd_set write_fds;
    FD_ZERO(&read_fds);
    FD_ZERO(&write_fds);
    int highest = ares_fds(channel, &read_fds, &write_fds);
    timeval wait{0, 50000};
    select(highest, &read_fds, &write_fds, nullptr, &wait);
    ares_process(channel, &read_fds, &write_fds);
  }
  ares_destroy(channel);
  ares_library_cleanup();
  return request.done ? 0 : 1;
}
