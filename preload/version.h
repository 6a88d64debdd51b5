#ifndef CRD_VERSION_H
#define CRD_VERSION_H
#define CRD_NAME    "cruddur"
#define CRD_VERSION "0.1.0"
#endif
